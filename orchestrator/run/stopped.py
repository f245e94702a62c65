"""Early stopping's bookkeeping: which trials the scheduler may stop, and what a stopped one leaves.

A trial the search's scheduler (``orchestrator/run/asha.py``) stops early is stopped, never failed:

- its marker ``stopped/<key>.json`` in the storage (``StorageLayout.stopped_file``) holds the epoch
  it was stopped at, the metrics it was judged on and the MLflow run it ran in; a re-run adopts it
  as it adopts a finished trial (not trained again, listed as stopped again);
- its MLflow run ends KILLED, tagged ``stopped_at_epoch`` and ``stopped_by`` besides the usual tags
  (``orchestrator/runs.record_stopped``); the report reads FINISHED runs only, so a stopped trial
  stays out of the tables' means.

The scheduler may stop only the trials of a search sample that have rivals: the trials that differ
from them in their sample alone (the same grid combination, recipe and seed). One ASHA over a whole
stage would compare a TinyBERT student with a DistilBERT one, or KD with MetaDistil, and stop the
weaker kind wholesale. A stage-1 teacher is never stopped: stage 2 distils from its folder, which a
stopped trial never writes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field

from orchestrator.plan.planner import PlannedTrial
from orchestrator.tracking.names import SAMPLE_TAGS
from trainers.record.atomic import staged
from trainers.record.layout import StorageLayout


@dataclass(frozen=True)
class Stop:
    """Where a trial was stopped: ``epoch`` the last one it reported, ``metric`` the one it was
    judged on, ``metrics`` every metric a search may rank by at that epoch (each ``val_<metric>`` of
    the task, ``train_loss``: ``search.metrics_of``), ``run_id`` the MLflow run it ran in."""

    epoch: int
    metric: str
    metrics: dict[str, float] = field(default_factory=dict)
    by: str = "asha"
    run_id: str = ""

    def write(self, layout: StorageLayout, key: str) -> None:
        path = layout.stopped_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with staged(path) as staging:  # a marker is read whole or not at all
            staging.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, layout: StorageLayout, key: str) -> Stop:
        return cls(**json.loads(layout.stopped_file(key).read_text()))

    @classmethod
    def from_result(cls, result: dict[str, object], metric: str) -> Stop:
        """From the result Tune stopped the trial on (its last report: ``trainers/runtime/worker.py``), which
        holds the task's metrics: the marker need not know the task to keep them all."""
        searchable = [m for m in result if m.startswith("val_")] + ["train_loss"]
        return cls(epoch=int(result["epoch"]), metric=metric,
                   metrics={m: float(result[m]) for m in searchable if m in result})


@dataclass(frozen=True)
class Rival:
    """A trial the scheduler may stop: ``group`` names the trials it is compared with, ``epochs``
    is its last epoch (where nothing is left to save by stopping it)."""

    group: str
    epochs: int


def rivals(trials: Iterable[PlannedTrial], teacher_keys: Collection[str]) -> dict[str, Rival]:
    """The trials the scheduler may stop, by run name: a search sample's, not a teacher."""
    found = {}
    for trial in trials:
        if trial.sample is None or trial.key in teacher_keys:
            continue
        group = {k: v for k, v in trial.tags.items() if k not in SAMPLE_TAGS}
        found[trial.name] = Rival(json.dumps(group, sort_keys=True), trial.config.epochs)
    return found


def stays_stopped(trial: PlannedTrial, layout: StorageLayout, scheduler: str,
                  teacher_keys: Collection[str]) -> bool:
    """A stopped trial is adopted as stopped while the space still stops trials early; it is
    trained to its end (from its last epoch checkpoint) if the space no longer does, or if this
    plan distils from it (a baseline stopped in another sweep that is a teacher here)."""
    return layout.is_stopped(trial.key) and scheduler != "none" and trial.key not in teacher_keys
