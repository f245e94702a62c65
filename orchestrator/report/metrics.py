"""The sweep's task and the metrics that score it, the main one first (``trainers.data.tasks``): what
heads the tables, what the significance tests compare, what the plots draw and, on validation,
what picks each configuration's best run (:func:`main_validation`).

- accuracy: the share of correct test predictions, in %;
- F1 of the positive class (label 1; MRPC, QQP): ``2·TP / (2·TP + FP + FN)``, in %;
- Matthews' correlation (CoLA): ``(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``, × 100,
  in [−100, 100].

Every trial logs ``test_<metric>`` for each of its task's metrics and ``val_<metric>`` per epoch
(``trainers.data.metrics``); :attr:`TrialRun.tested` holds the former. An SST-2 sweep, scored by
accuracy alone, reads as it always has: its tables, notes and file names do not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.report.reader import TrialRun
from trainers.data.tasks import TASKS

# As a column or plot title, and inside a sentence.
TITLES = {"accuracy": "Accuracy", "f1": "F1", "matthews": "Matthews corr."}
WORDS = {"accuracy": "accuracy", "f1": "F1", "matthews": "Matthews correlation"}
ACCURACY = "accuracy"


@dataclass(frozen=True)
class TaskMetrics:
    """The task of a sweep's runs (every trial of a sweep shares its data) and its metrics."""

    name: str
    title: str  # as papers write it: SST-2, MRPC
    metrics: tuple[str, ...] = (ACCURACY,)  # the main one first
    positive: str = "positive"  # the name of label 1, the class F1 is of

    @property
    def main(self) -> str:
        return self.metrics[0]

    @property
    def accuracy_only(self) -> bool:
        return self.metrics == (ACCURACY,)

    @property
    def words(self) -> str:
        """``accuracy``; ``F1 and accuracy``; ``Matthews correlation and accuracy``."""
        named = [WORDS.get(m, m) for m in self.metrics]
        return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]

    @property
    def unit(self) -> str:
        """Of the main metric: a correlation in [−1, 1] is no share, so not "%"."""
        return "×100" if self.main == "matthews" else "%"

    @property
    def bounds(self) -> tuple[float, float]:
        """Where the main metric (× 100) lies: an interval is clipped to it."""
        return (-100.0, 100.0) if self.main == "matthews" else (0.0, 100.0)


SST2 = TaskMetrics("sst2", "SST-2")  # runs logged before tasks existed are SST-2's


def sweep_task(runs: Iterable[TrialRun]) -> TaskMetrics:
    """The runs' task with its metrics; a task this code does not know reads as accuracy alone."""
    name = next((run.task for run in runs), SST2.name)
    task = TASKS.get(name)
    if task is None:
        return TaskMetrics(name, name)
    return TaskMetrics(name, task.title, task.metrics, task.labels[1])


def run_value(run: TrialRun, metric: str) -> float | None:
    """The run's test ``metric`` × 100; ``None`` where the run did not log it."""
    if metric == ACCURACY:
        return run.accuracy
    value = dict(run.tested).get(metric)
    return None if value is None else 100 * value


def main_validation(run: TrialRun) -> float | None:
    """The run's task's main validation metric at its last epoch, as logged (a fraction: SST-2's
    ``val_accuracy``, MRPC's ``val_f1``); ``None`` where the run did not log it. The rule that
    picks each configuration's best run (``orchestrator.report.best.best_runs``: the registry's
    ``best`` alias, predict's and the demo's models): the metric the task's report is headed by,
    measured where the test is not, so picking a run does not peek at its test score."""
    return run.last_value(f"val_{sweep_task([run]).main}")
