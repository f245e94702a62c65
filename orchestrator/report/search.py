"""A random search's ranking: which sample of each configuration is its best, and so what the
tables show.

The rule. The runs of a searched sweep group by configuration (:class:`GroupKey`) AND sample: two
samples drew different values, so they are two configurations, never two seeds of one. Each
(configuration, sample) is a :class:`Candidate`, scored by the search metric at the last epoch a
run logged, averaged over the candidate's FINISHED seeds, and ranked within its configuration in
the search's mode. A candidate with a seed the scheduler stopped ranks after every candidate with
none: ASHA stops the weak seeds, so the mean of the survivors flatters it. Ties go to the lower
sample. A stopped run never enters a mean; it is listed with its epoch and last value.

Tables 1–3 show each configuration's best candidate only (its seeds are the row's runs, so the
row's label needs no sample); the search section (``search.csv``, the README's "Search") shows
every candidate. A configuration no draw reaches has one candidate (sample ``None``) and reads as
in any sweep: a sweep without a search is all such, and its tables are what they always were.

The metric and mode: what the search itself optimised, so the report ranks as Optuna and ASHA
did: the sweep run's ``search_metric`` and ``search_mode`` tags where recorded, else the space
file's ``search:`` block where the report found the file, else the search's defaults, the task's
main validation metric (SST-2's ``val_accuracy``, MRPC's ``val_f1``: ``orchestrator.spec.search``), max.
The section shows and plots the task's main validation metric beside the ranking, as its Tables
1–3 are headed by its main metric (:mod:`orchestrator.report.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.report import stats
from orchestrator.report.metrics import TaskMetrics, sweep_task
from orchestrator.report.reader import GroupKey, SweepData, TrialRun
from orchestrator.spec.search import SearchSpec

METRIC_TAG, MODE_TAG = "search_metric", "search_mode"
_DEFAULT = SearchSpec()


@dataclass(frozen=True)
class Objective:
    """What ranks a search: ``metric`` (``train_loss`` or a ``val_<metric>`` of the task) at the
    last epoch, mean over seeds, in ``mode``; ``source`` says where the choice was read."""

    metric: str = _DEFAULT.metric
    mode: str = _DEFAULT.mode
    source: str = "the default"

    def value(self, run: TrialRun) -> float | None:
        return at_last_epoch(run, self.metric)

    def describe(self, source: bool = True) -> str:
        return (f"the last epoch's {self.metric}, mean over seeds, {self.mode}imised"
                + (f" (from {self.source})" if source else ""))


def at_last_epoch(run: TrialRun, metric: str) -> float | None:
    """The run's ``metric`` at its last epoch; a validation score × 100 (in %), as the tables give it."""
    value = run.last_value(metric)
    return 100 * value if value is not None and metric.startswith("val_") else value


def objective_of(tags: Mapping[str, str], space: SearchSpec | None, space_name: str,
                 task: TaskMetrics) -> Objective:
    """The sweep run's tags first (what the sweep ranked by), then the space file (its search
    block, read with its task: ``SearchSpec.for_task``), then the defaults for ``task``. A recorded
    metric is taken as it is: it is what the search optimised, the task's main one or not."""
    default = f"val_{task.main}"
    if tags.get(METRIC_TAG) or tags.get(MODE_TAG):
        return Objective(tags.get(METRIC_TAG) or default, tags.get(MODE_TAG) or _DEFAULT.mode,
                         "the sweep run's tags")
    if space is not None:
        return Objective(space.metric, space.mode, space_name)
    return Objective(default)


@dataclass(frozen=True)
class Candidate:
    """One sample of one configuration: its finished ``runs`` and its ``stopped`` ones, by seed;
    ``score``: the metric over the finished runs (``None`` where none logged it)."""

    key: GroupKey
    sample: int | None
    runs: tuple[TrialRun, ...]
    stopped: tuple[TrialRun, ...]
    score: stats.Summary | None

    @property
    def searched(self) -> dict[str, Any]:
        """The drawn values (full precision; a teacher's as ``bert.lr``, after the student's), the
        same in every seed."""
        return dict(sorted((self.runs or self.stopped)[0].searched, key=lambda kv: _param_order(kv[0])))

    @property
    def complete(self) -> bool:
        return not self.stopped

    def mean(self, value: Callable[[TrialRun], float | None]) -> float | None:
        """The mean over the finished runs of ``value(run)``, where every run has one."""
        values = [value(run) for run in self.runs]
        return None if not values or None in values else stats.mean_std(values).mean


@dataclass(frozen=True)
class Ranking:
    """Every configuration with a finished run → its candidates, best first; every stopped run;
    the runs' task, whose main metric the section shows beside the objective."""

    objective: Objective
    ranked: dict[GroupKey, tuple[Candidate, ...]]
    stopped: tuple[TrialRun, ...]
    task: TaskMetrics

    @property
    def validation(self) -> str:
        """The task's main validation metric: ``val_accuracy``; MRPC's ``val_f1``."""
        return f"val_{self.task.main}"

    @property
    def table_groups(self) -> dict[GroupKey, tuple[TrialRun, ...]]:
        """What Tables 1–3 show: each configuration's best candidate's runs."""
        return {key: candidates[0].runs for key, candidates in self.ranked.items()}

    @property
    def searched(self) -> dict[GroupKey, tuple[Candidate, ...]]:
        """The configurations some draw reached (they carry a sample)."""
        return {key: c for key, c in self.ranked.items() if c[0].sample is not None}

    @property
    def shared(self) -> list[GroupKey]:
        """The configurations no draw reached: one trial per seed serves every sample."""
        return [key for key in self.ranked if key not in self.searched]

    @property
    def params(self) -> list[str]:
        """Every searched key, the student's before the teachers' (``lr`` before ``bert.lr``)."""
        keys = {k for c in self.searched.values() for cand in c for k in cand.searched}
        keys |= {k for run in self.stopped for k, _ in run.searched}
        return sorted(keys, key=_param_order)


def search_note(ranking: Ranking) -> str:
    """The tables' footnote in a searched sweep: which sample a row is."""
    return (f"Search: each row is its configuration's best sample by {ranking.objective.describe()}; "
            "every sample is ranked in the Search section and search.csv. A run stopped early "
            "enters no mean.")


def rank(data: SweepData, objective: Objective) -> Ranking:
    """The rule of this module over the sweep's finished and stopped runs."""
    finished = _by_sample(data.runs)
    stopped = _by_sample(data.stopped)
    candidates: dict[GroupKey, list[Candidate]] = {}
    for (key, sample), runs in finished.items():
        values = [objective.value(run) for run in runs]
        score = stats.mean_std([v for v in values if v is not None]) if None not in values else None
        candidates.setdefault(key, []).append(
            Candidate(key, sample, runs, stopped.get((key, sample), ()), score))
    sign = -1 if objective.mode == "max" else 1

    def order(c: Candidate) -> tuple[bool, bool, float, int]:
        return (not c.complete, c.score is None, sign * c.score.mean if c.score else 0.0,
                -1 if c.sample is None else c.sample)

    ranked = {key: tuple(sorted(found, key=order)) for key, found in sorted(candidates.items())}
    return Ranking(objective, ranked, tuple(sorted(
        data.stopped, key=lambda r: (r.key, -1 if r.sample is None else r.sample, r.seed))),
        sweep_task((*data.runs, *data.stopped)))


def _param_order(key: str) -> tuple[bool, str]:
    """The student's values before its teachers' (``lr`` before ``bert.lr``)."""
    return "." in key, key


def _by_sample(runs: Iterable[TrialRun]) -> dict[tuple[GroupKey, int | None], tuple[TrialRun, ...]]:
    groups: dict[tuple[GroupKey, int | None], list[TrialRun]] = {}
    for run in runs:
        groups.setdefault((run.key, run.sample), []).append(run)
    return {slot: tuple(sorted(group, key=lambda r: r.seed)) for slot, group in groups.items()}
