"""Each configuration's best run: what the registry registers and what predict and the demo load.

The sweep's teachers first, then one run per configuration (runs that differ only by seed or
search sample), the best by :func:`~orchestrator.report.metrics.main_validation` (the task's main
validation metric at the last epoch: SST-2's accuracy, MRPC's F1), the first of equals. Here, not
in ``orchestrator/serve/predict.py``, so that registering a sweep's models loads no serving code.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.metrics import main_validation
from orchestrator.report.reader import GroupKey, TrialRun, is_baseline, load_sweep


def best_runs(client: MlflowClient, sweep: str) -> list[tuple[str, TrialRun]]:
    """(label, run): the teachers first, then one run per configuration, the best over seeds and
    samples by :func:`~orchestrator.report.metrics.main_validation` (the first of equals)."""
    data = load_sweep(client, sweep)
    names = SweepNames.of(run.key for run in data.runs)
    best: dict[GroupKey, TrialRun] = {}
    score: dict[GroupKey, float] = {}
    for run in data.runs:
        found = main_validation(run)
        value = float("-inf") if found is None else found
        if run.key not in best or value > score[run.key]:
            best[run.key], score[run.key] = run, value
    labelled = [(full_label(key, names), run) for key, run in best.items()]
    return sorted(labelled, key=lambda item: (
        not (is_baseline(item[1].key.method) and item[1].key.student in names.teachers), item[0]))
