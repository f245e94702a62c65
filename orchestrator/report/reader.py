"""A sweep's trial runs, read from MLflow: what the report, predict and the demo stand on.

One experiment per sweep; its FINISHED child runs (tag ``method`` set, the tags and metrics of
:mod:`orchestrator.tracking.names`) become :class:`TrialRun` records, grouped by configuration
(:class:`GroupKey`: method, teachers, student, noise_p, warmup_epochs, noise_teachers, meta_every,
recipe); the seeds of a group are its repetitions. Runs logged before the ``noise_teachers``,
``meta_every`` and ``recipe`` tags existed read as the defaults: student-only noise, a meta update
on every batch, the "default" recipe. Everything goes through ``MlflowClient``, never Ray's folders.

A random search's runs also carry their ``sample`` and its ``searched`` values: two samples of one
configuration are two configurations, never two seeds of one (:mod:`orchestrator.report.search`
ranks them). A run stopped early by the scheduler (status KILLED, tag ``stopped_at_epoch``) is
read apart, into :attr:`SweepData.stopped`: it never enters a mean, and the report lists it.

This module imports neither pandas nor matplotlib: predict and the demo import it and nothing else
of the report (``tests/orchestrator/report/test_reader.py`` checks).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Experiment, Run

from orchestrator.tracking.store import parent_run, redact, search_all, sweep_names
from trainers.errors import UserError
from trainers.methods import registry as methods
from trainers.models.cost_names import LOGGED as COST_METRICS
from trainers.runtime.kernels import TAG_PREFIX as ENV_TAGS

DEFAULT_RECIPE = "default"
STOPPED_TAG = "stopped_at_epoch"  # set, with status KILLED, on a run the scheduler stopped early

K = TypeVar("K")


class ReportError(UserError):
    """Bad input the user can fix (unknown sweep, no runs, a missing artifact): one line, exit 2."""


def is_baseline(method: str) -> bool:
    """Whether runs of ``method`` trained a model on labels alone (fine-tune: teachers, baselines)."""
    return method == methods.baseline().name


@dataclass(frozen=True, order=True)
class GroupKey:
    """One configuration; its runs differ only by seed.

    ``noise_teachers``: the noise (``noise_p`` > 0) reached the teachers' inputs too;
    ``meta_every`` = k > 1: MetaDistil's one-step meta update on every k-th batch only, plain KD on
    the others (a cheaper variant, not MetaDistil itself); ``recipe``: the training recipe's name
    ("default": the search space's own ``train:`` values; e.g. "official": the official code's);
    ``assistants``: the teacher-assistant chain between the teachers and the student (empty: direct);
    ``cohort`` and ``member``: a cohort's members and the student's place in it, counted from 1
    (deep mutual learning: each member is a configuration of its own).
    """

    method: str
    teachers: tuple[str, ...]
    student: str
    noise_p: float = 0.0
    warmup_epochs: int = 0
    noise_teachers: bool = False
    meta_every: int = 1
    recipe: str = DEFAULT_RECIPE
    assistants: tuple[str, ...] = ()
    cohort: tuple[str, ...] = ()
    member: int = 0

    @property
    def plain(self) -> bool:
        """No noise, no warm start, no assistant and no cohort: a Table 1 configuration."""
        return self.noise_p == 0 and self.warmup_epochs == 0 and not self.assistants and not self.cohort


@dataclass(frozen=True)
class TrialRun:
    """The parts of one child run that the report uses; accuracies in percent.

    ``sample`` and ``searched`` (its drawn values by key, sorted): a random search's, ``None`` and
    empty elsewhere. ``last``: the metrics a search may rank by (``train_loss`` and each
    ``val_<metric>`` of the task: :mod:`orchestrator.report.search`) at the last epoch logged, as logged.
    ``stopped_at_epoch``: set on a run the scheduler stopped, whose ``accuracy`` is NaN when it
    never reached its test."""

    run_id: str
    run_name: str
    key: GroupKey
    seed: int
    accuracy: float
    student_params: int
    teacher_params: int
    size: str
    trial_key: str
    start_time: int
    sample: int | None = None
    searched: tuple[tuple[str, Any], ...] = ()
    last: tuple[tuple[str, float], ...] = ()
    stopped_at_epoch: int | None = None
    # Every final ``test_<metric>`` of the run's task (SST-2: accuracy; MRPC: f1 and accuracy), as logged.
    tested: tuple[tuple[str, float], ...] = ()
    task: str = "sst2"  # runs logged before tasks have no ``task`` tag: they are SST-2's
    # The worker's CPU, kernel path, versions and teachers' digests (``env.*`` tags, sorted;
    # ``trainers/runtime/kernels.py``); empty for runs logged before they were recorded.
    environment: tuple[tuple[str, str], ...] = ()
    # What the model and its int8 variant cost (``trainers/models/cost_names.py``: size_mb, latency_ms_p50,
    # ..., each also with _int8, and cost_threads), as logged; empty for runs logged before.
    cost: tuple[tuple[str, float], ...] = ()

    def last_value(self, metric: str) -> float | None:
        return dict(self.last).get(metric)


@dataclass(frozen=True)
class SweepData:
    name: str
    experiment: Experiment
    tags: dict[str, str]
    parent_run_id: str | None
    runs: tuple[TrialRun, ...]
    skipped: tuple[str, ...]
    unfinished: int  # neither FINISHED nor stopped early: running, failed, killed by hand
    span_ms: tuple[int, int | None] | None = None  # the sweep run's start and (last) end
    stopped: tuple[TrialRun, ...] = ()

    @property
    def is_search(self) -> bool:
        """A random search's sweep: some run carries a ``sample`` tag."""
        return any(run.sample is not None for run in (*self.runs, *self.stopped))

    @property
    def is_paper(self) -> bool:
        """paper.yaml sweeps of SST-2 get the original work's numbers in a side column (and its
        configurations' rows): those are SST-2 accuracies, nothing to set beside another task's."""
        named = self.name.startswith("paper") or Path(self.tags.get("space", "")).stem == "paper"
        return named and all(run.task == "sst2" for run in self.runs)


def resolve_sweep(client: MlflowClient, sweep: str | None) -> str:
    """The sweep to read: the one named, or the only one there is."""
    names = sweep_names(client)
    if sweep is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise ReportError(f"no sweeps in {redact(client.tracking_uri)}; "
                              f"run one with: python -m orchestrator.sweep --name NAME")
        raise ReportError(f"several sweeps, pick one with --sweep: {', '.join(names)}")
    if sweep not in names:
        raise _unknown_sweep(client, sweep, names)
    return sweep


def _unknown_sweep(client: MlflowClient, sweep: str, names: Sequence[str]) -> ReportError:
    where = redact(client.tracking_uri)
    if names:
        return ReportError(f"unknown sweep {sweep!r}; sweeps in {where}: {', '.join(names)}; "
                           f"pick one with --sweep")
    return ReportError(f"unknown sweep {sweep!r}: {where} holds no sweep; run it with: "
                       f"python -m orchestrator.sweep --name {sweep}")


def load_sweep(client: MlflowClient, sweep: str) -> SweepData:
    """The sweep's experiment, its parent run's tags, its FINISHED trial runs (one per seed) and
    those the scheduler stopped early."""
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None or experiment.lifecycle_stage != "active":
        raise _unknown_sweep(client, sweep, sweep_names(client))
    finished = search_all(client, experiment.experiment_id,
                          "tags.method IS NOT NULL AND attributes.status = 'FINISHED'")
    if not finished:
        raise ReportError(f"sweep {sweep!r} has no finished trial runs in "
                          f"{redact(client.tracking_uri)}; produce them with: "
                          f"python -m orchestrator.sweep --name {sweep}")
    unfinished = search_all(client, experiment.experiment_id,
                            "tags.method IS NOT NULL AND attributes.status != 'FINISHED'")
    early = [run for run in unfinished if run.info.status == "KILLED" and run.data.tags.get(STOPPED_TAG)]
    parent = parent_run(client, experiment.experiment_id)
    runs, skipped = _trial_runs(finished)
    stopped, stopped_skipped = _trial_runs(early)
    tags = {**experiment.tags, **(parent.data.tags if parent else {})}
    return SweepData(sweep, experiment, tags, parent.info.run_id if parent else None,
                     runs, skipped + stopped_skipped, len(unfinished) - len(early),
                     (parent.info.start_time, parent.info.end_time) if parent else None, stopped)


def _trial_runs(runs: Iterable[Run]) -> tuple[tuple[TrialRun, ...], tuple[str, ...]]:
    """Parse runs; a trial logged twice (same ``trial_key``, or same configuration, sample and seed
    when there is no key) counts once, with its latest run. Distinct trainings that share a
    configuration and seed (e.g. a teacher fine-tuned with other hyper-parameters) all count."""
    latest: dict[tuple[GroupKey, int | None, int, str], TrialRun] = {}
    skipped: list[str] = []
    for run in runs:
        try:
            trial = _trial_run(run)
        except KeyError as err:
            skipped.append(f"run {run.info.run_id} skipped: no {err.args[0]!r} tag or metric")
            continue
        except ValueError as err:
            skipped.append(f"run {run.info.run_id} skipped: {err}")
            continue
        slot = (trial.key, trial.sample, trial.seed, trial.trial_key)
        if slot in latest:
            trial, older = sorted((latest[slot], trial), key=lambda t: t.start_time, reverse=True)
            skipped.append(f"run {older.run_id} skipped: run {trial.run_id} is a later run of "
                           f"the same trial")
        latest[slot] = trial
    return tuple(sorted(latest.values(), key=lambda t: (t.key, t.seed))), tuple(skipped)


def _trial_run(run: Run) -> TrialRun:
    tags, metrics = run.data.tags, run.data.metrics
    teachers = tags.get("teachers", "")
    method = tags["method"]
    noise_p = float(tags.get("noise_p") or 0)
    # The sweep tags every trial; where a tag changes nothing (no noise, no teacher, not
    # MetaDistil) it must not split one configuration into two rows.
    known = methods.known(method)
    noise_teachers = _bool_tag(tags, "noise_teachers") and noise_p > 0 and bool(known and known.distils)
    meta_every = int(tags.get("meta_every") or 1) if known and known.variant_key else 1
    if meta_every < 1:
        raise ValueError(f"meta_every tag {meta_every} is not >= 1")
    key = GroupKey(method=method,
                   teachers=tuple(teachers.split("+")) if teachers else (),
                   student=tags["student"],
                   noise_p=noise_p,
                   warmup_epochs=int(float(tags.get("warmup_epochs") or 0)),
                   noise_teachers=noise_teachers, meta_every=meta_every,
                   recipe=tags.get("recipe") or DEFAULT_RECIPE,
                   assistants=tuple(tags["assistants"].split(">")) if tags.get("assistants") else (),
                   cohort=tuple(tags["cohort"].split("+")) if tags.get("cohort") else (),
                   member=int(tags.get("member") or 0))
    stopped_at = int(tags[STOPPED_TAG]) if tags.get(STOPPED_TAG) else None
    # A stopped run may never have reached its test: it is listed, never averaged.
    tested = metrics.get("test_accuracy") if stopped_at is not None else metrics["test_accuracy"]
    return TrialRun(run_id=run.info.run_id, run_name=run.info.run_name or "", key=key,
                    seed=int(tags["seed"]),
                    accuracy=math.nan if tested is None else 100 * tested,
                    student_params=int(metrics.get("student_params", 0)),
                    teacher_params=int(metrics.get("teacher_params", 0)),
                    size=tags.get("size", ""), trial_key=tags.get("trial_key", ""),
                    start_time=run.info.start_time or 0,
                    sample=int(tags["sample"]) if tags.get("sample") else None,
                    searched=_searched(tags.get("searched") or "{}"),
                    last=tuple((m, v) for m, v in sorted(metrics.items())
                               if m == "train_loss" or m.startswith("val_")),
                    stopped_at_epoch=stopped_at, task=tags.get("task") or "sst2",
                    tested=tuple(sorted((m.removeprefix("test_"), v) for m, v in metrics.items()
                                        if m.startswith("test_"))),
                    environment=tuple(sorted((k, v) for k, v in tags.items() if k.startswith(ENV_TAGS))),
                    cost=tuple(sorted((m, v) for m, v in metrics.items() if m in COST_METRICS)))


def _searched(text: str) -> tuple[tuple[str, Any], ...]:
    """The ``searched`` tag, ``{"lr":0.000316...,"bert.lr":...}``, as sorted (key, value) pairs."""
    values = json.loads(text)  # a malformed tag raises ValueError: the run is skipped, and said so
    if not isinstance(values, dict):
        raise ValueError(f"searched tag {text!r} is not a JSON object")
    return tuple(sorted(values.items()))


def _bool_tag(tags: Mapping[str, str], name: str) -> bool:
    """A ``"true"``/``"false"`` tag, false when missing; anything else is an error, not a silent false."""
    value = (tags.get(name) or "false").lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name} tag {tags[name]!r} is neither 'true' nor 'false'")
    return value == "true"


def val_histories(client: MlflowClient, groups: Mapping[K, Iterable[TrialRun]],
                  metric: str = "val_accuracy") -> dict[K, dict[int, list[float]]]:
    """``metric`` (``val_accuracy``, or another of the task's ``val_<metric>``) × 100 by epoch for
    each group with a history, one value per seed."""
    result: dict[K, dict[int, list[float]]] = {}
    for group, runs in groups.items():
        by_epoch: dict[int, list[float]] = {}
        for run in runs:
            for point in client.get_metric_history(run.run_id, metric):
                by_epoch.setdefault(point.step, []).append(100 * point.value)
        if by_epoch:
            result[group] = by_epoch
    return result
