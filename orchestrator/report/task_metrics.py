"""The table of a task's own metrics, for a task that GLUE scores by more than accuracy.

MRPC and QQP are scored by F1 of the positive class and accuracy, CoLA by Matthews' correlation
(``trainers.tasks``); the trials log each as ``test_<metric>``. This table has every configuration
once (as the plots do), one column per metric, the task's main metric first, as mean ± sample
standard deviation over seeds (in %, n seeds), and the main metric's difference from the fine-tuned
student of the same architecture: Δ = metric(row) − metric(fine-tuned), on the same test examples
and the same seed (predictions matched on ``index``), with a paired bootstrap 95 % interval and
two-sided p (F1: ``stats.paired_bootstrap_f1``; accuracy: ``stats.paired_bootstrap``). Matthews'
correlation has no paired test here ("–"). An SST-2 sweep (accuracy only) has no such table:
Table 1 is its table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from orchestrator import stats
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import FINETUNE, TrialRun
from orchestrator.report.render import format_p, markdown_table, write_csv
from orchestrator.report.tables import Row
from trainers.tasks import TASKS

TITLES = {"f1": "F1", "accuracy": "Accuracy", "matthews": "Matthews corr."}
BOOTSTRAPS = ("f1", "accuracy")


def task_metrics(runs: Sequence[TrialRun]) -> tuple[str, ...] | None:
    """The metrics the runs' task is scored by, main first; ``None`` for accuracy alone."""
    logged = {name for run in runs for name, _ in run.tested}
    if logged <= {"accuracy"}:
        return None
    task = next((t for t in TASKS.values() if set(t.metrics) == logged), None)
    return task.metrics if task else tuple(sorted(logged))


def _baseline(row: Row, rows: Sequence[Row]) -> Row | None:
    """The fine-tuned student of the same architecture and recipe (``None`` for that row itself)."""
    if row.key.method == FINETUNE:
        return None
    return next((r for r in rows if r.key.method == FINETUNE and r.key.student == row.key.student
                 and not r.key.teachers and r.key.recipe == row.key.recipe and r.runs), None)


def _difference(row: Row, baseline: Row, metric: str, predictions: Predictions
                ) -> stats.BootstrapResult | None:
    """Δ main metric on one seed both rows ran, over the test examples both predicted."""
    base_runs = {run.seed: run for run in baseline.runs}
    run = next((r for r in row.runs if r.seed in base_runs), None)
    if run is None or metric not in BOOTSTRAPS:
        return None
    ours, theirs = predictions.get(run.run_id), predictions.get(base_runs[run.seed].run_id)
    if ours is None or theirs is None:
        return None
    both = ours.merge(theirs, on=["index", "label"], suffixes=("_a", "_b"))
    if both.empty:
        return None
    if metric == "f1":
        return stats.paired_bootstrap_f1(both["label"], both["prediction_a"], both["prediction_b"])
    return stats.paired_bootstrap(both["prediction_a"] == both["label"],
                                  both["prediction_b"] == both["label"])


def _summary(row: Row, metric: str) -> stats.Summary | None:
    values = [100 * dict(run.tested)[metric] for run in row.runs if metric in dict(run.tested)]
    return stats.mean_std(values) if values else None


def write_task_metrics(rows: Sequence[Row], predictions: Predictions, out_dir: Path,
                       files: list[Path]) -> str:
    """Write ``task_metrics.md`` and ``.csv``; return the Markdown ("" for accuracy alone)."""
    metrics = task_metrics([run for row in rows for run in row.runs])
    if metrics is None:
        return ""
    main = metrics[0]
    cells, records = [], []
    for row in rows:
        summaries = {m: _summary(row, m) for m in metrics}
        baseline = _baseline(row, rows)
        boot = _difference(row, baseline, main, predictions) if baseline else None
        shown = [f"{s.mean:.2f} ± {s.std:.2f} (n={s.n})" if s and s.n > 1 else f"{s.mean:.2f}" if s
                 else "–" for s in summaries.values()]
        delta = (f"{100 * boot.diff:+.2f} [{100 * boot.ci_low:+.2f}, {100 * boot.ci_high:+.2f}]"
                 if boot else "–")
        cells.append([row.label, *shown, delta, format_p(boot.p_value) if boot else "–"])
        records.append({"row": row.label, **{f"{m}_mean": s.mean if s else None
                                             for m, s in summaries.items()},
                        **{f"{m}_std": s.std if s else None for m, s in summaries.items()},
                        f"delta_{main}": 100 * boot.diff if boot else None,
                        "ci_low": 100 * boot.ci_low if boot else None,
                        "ci_high": 100 * boot.ci_high if boot else None,
                        "p_bootstrap": boot.p_value if boot else None})
    title = TITLES.get(main, main)
    headers = ["Method", *(f"{TITLES.get(m, m)} (%)" for m in metrics),
               f"Δ {title} vs fine-tuned student (points) [95 % CI]", "p (bootstrap)"]
    text = (f"Test {', '.join(TITLES.get(m, m) for m in metrics)} of every configuration, "
            f"{title} first (the task's main metric).\n\n" + markdown_table(headers, [("", cells)])
            + f"\nMean ± sample standard deviation over seeds (n) where n > 1. Δ: the {title} of the row "
            f"minus that of the fine-tuned student of the same architecture, on the same seed and "
            f"test examples; 95 % interval and two-sided p from a paired bootstrap (10,000 resamples).\n")
    path = out_dir / "task_metrics.md"
    path.write_text(text, encoding="utf-8")
    files.extend([path, write_csv(pd.DataFrame.from_records(records), out_dir / "task_metrics.csv")])
    return text
