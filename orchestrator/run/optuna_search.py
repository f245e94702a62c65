"""Tune's ``OptunaSearch``, one per study, behind the one search algorithm a stage's Tune run takes.

Under ``search: {algorithm: optuna}`` a stage's Tune run (``stages.tune_stage``) is driven by this
searcher. It hands Tune the stage's planned trials first, by name as the grid does (the fixed
trials, and the recorded suggestions a re-run resumes), then asks the studies' ``OptunaSearch``
in turn, the one with fewest suggestions first, until each has ``num_samples``. Every study hears
every result of its own: those a re-run finds finished before it starts, those of the trials it
resumes, and those of its new suggestions (``add_evaluated_point``, or Tune's own calls).

A new suggestion becomes a trial in the driver, before Tune starts it: recorded first
(``studies.Record``), then given its MLflow run and payload by ``open_trial``. A driver killed
after that finds the suggestion again on its re-run and resumes its trial. A suggestion of values
a trial already has (a study over choices can repeat one) is recorded and told that trial's
result, never trained twice.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from orchestrator.plan.planner import Keying, PlannedTrial, suggested
from orchestrator.plan.studies import Record, Study, Suggestion, told
from orchestrator.spec.search import Distribution, SearchSpec
from trainers.record.layout import StorageLayout
from trainers.runtime.payload import TrialPayload


def optuna_distribution(dist: Distribution) -> BaseDistribution:
    """A distribution as Optuna writes it (both of ``randint``'s bounds included, as here)."""
    if dist.kind == "choice":
        return CategoricalDistribution(list(dist.args))
    low, high = dist.args
    if dist.kind == "randint":
        return IntDistribution(low, high)
    return FloatDistribution(low, high, log=dist.kind == "loguniform")


class StageSearch(Searcher):
    """The stage's ``fixed`` trials by name, then its ``studies``' suggestions; ``created`` holds
    the trials of the new suggestions, ``open_trial`` makes each one's payload."""

    def __init__(self, search: SearchSpec, fixed: Sequence[str], studies: Sequence[Study],
                 record: Record, keying: Keying, layout: StorageLayout,
                 open_trial: Callable[[PlannedTrial], TrialPayload]) -> None:
        super().__init__(metric=search.metric, mode=search.mode)
        self._budget = search.num_samples
        self._queue = list(fixed)
        self._studies = {s.group: s for s in studies}
        self._record, self._keying, self._layout, self._open = record, keying, layout, open_trial
        self._made = {s.group: len(s.recorded) for s in studies}
        self._optuna = {s.group: OptunaSearch({k: optuna_distribution(d) for k, d in s.space.items()},
                                              metric=search.metric, mode=search.mode, seed=s.seed(search))
                        for s in studies}
        self.created: list[PlannedTrial] = []
        self._keys: dict[str, str] = {}  # key → name of every trial of this stage's studies
        self._resumed: dict[str, tuple[str, Suggestion]] = {}  # name → its study and suggestion
        self._asked: dict[str, tuple[str, str]] = {}  # Tune trial id → study, Optuna's trial id
        self._names: dict[str, str] = {}  # Tune trial id → trial name
        self._history: dict[str, list[float]] = defaultdict(list)
        self._twins: dict[str, list[tuple[str, Suggestion]]] = defaultdict(list)  # by name
        for study in studies:
            for suggestion in study.recorded:
                trial = suggested(study.template, suggestion, keying)
                self._keys.setdefault(trial.key, trial.name)
                result = told(layout, trial.key, search.metric)
                if result is not None:
                    self._optuna[study.group].add_evaluated_point(
                        suggestion.values, result[0], intermediate_values=result[1])
                elif trial.name in self._queue:
                    self._resumed[trial.name] = (study.group, suggestion)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # every study's space is its own, set above

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._queue:
            self._names[trial_id] = self._queue.pop(0)
            return {"name": self._names[trial_id]}
        for attempt in itertools.count():
            open_ = [g for g, made in self._made.items() if made < self._budget]
            if not open_:
                return Searcher.FINISHED
            group = min(open_, key=lambda g: (self._made[g], g))
            ask = trial_id if not attempt else f"{trial_id}+{attempt}"  # one Optuna trial per ask
            values = self._optuna[group].suggest(ask)
            suggestion = Suggestion(self._made[group], values)
            self._made[group] += 1
            self._record.add(group, suggestion)
            trial = suggested(self._studies[group].template, suggestion, self._keying)
            twin = self._keys.get(trial.key)
            if twin is None:
                self._keys[trial.key] = trial.name
                self._asked[trial_id], self._names[trial_id] = (group, ask), trial.name
                self.created.append(trial)
                return {"name": trial.name, "payload": self._open(trial)}
            # Values a trial already has: its result is this suggestion's too; ask again.
            result = told(self._layout, trial.key, self.metric)
            if result is not None:
                self._optuna[group].on_trial_complete(ask, {self.metric: result[0]})
            else:
                self._twins[twin].append((group, ask))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._history[trial_id].append(float(result[self.metric]))
        if trial_id in self._asked:
            group, ask = self._asked[trial_id]
            self._optuna[group].on_trial_result(ask, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        name = self._names.get(trial_id)
        if trial_id in self._asked:
            group, ask = self._asked[trial_id]
            self._optuna[group].on_trial_complete(ask, result, error)
        elif name in self._resumed:
            group, suggestion = self._resumed[name]
            value = float(result[self.metric]) if result and self.metric in result else None
            self._optuna[group].add_evaluated_point(
                suggestion.values, value, error=error or value is None,
                intermediate_values=self._history[trial_id])
        for group, ask in self._twins.pop(name, []):
            self._optuna[group].on_trial_complete(ask, result, error)
