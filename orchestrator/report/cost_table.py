"""The "size and speed" table's numbers: every configuration's model and its int8 variant, each
with the task's main test metric, its size on disk and its CPU latency and throughput (issue 29,
item 3), and the int8 − fp32 difference tested on the same test examples.

What each run logged (``trainers/models/compressed.py``, names in ``trainers/models/cost_names.py``): the test
score of both variants (``test_<main>``, ``test_<main>_int8``), ``size_mb``, ``latency_ms_p50``,
``latency_ms_p95``, ``throughput_b32`` and each with ``_int8``, measured by one harness
(``trainers/models/cost.py``) on ``cost_threads`` CPU threads. A row is one configuration (its runs the
seeds, as in Tables 1–5); each figure is the mean ± sample standard deviation over the runs that
logged it (:func:`orchestrator.report.stats.mean_std`).

The paired test of int8 against fp32: run r's int8 predictions are paired with run r's own fp32
predictions (the same model before and after quantization, the same test examples, matched on
``index``), pooled over the row's seeds, and tested as the significance table tests two rows
(:mod:`orchestrator.report.significance`): a paired bootstrap of Δ = metric(int8) − metric(fp32)
and McNemar's exact test on correctness, Holm's correction over this table's tests. Runs logged
before the int8 predictions were written (``trainers.record.artifacts.INT8_PREDICTIONS_ARTIFACT``) get
the difference of their logged scores, untested, and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from mlflow import MlflowClient

from orchestrator.report import stats
from orchestrator.report.metrics import TaskMetrics, run_value
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import TrialRun
from orchestrator.report.significance import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    PAIRED_BOOTSTRAPS,
    holm,
)
from orchestrator.report.tables import Row
from trainers.models.cost_names import COST, INT8, THREADS
from trainers.record.artifacts import INT8_PREDICTIONS_ARTIFACT

VARIANTS = ("fp32", "int8")
SUFFIX = {"fp32": "", "int8": INT8}


@dataclass(frozen=True)
class Variant:
    """One variant of a configuration's model over its runs: the main metric (× 100) and each
    figure of ``trainers.models.cost_names.COST`` (by name, without suffix), ``None`` where no run logged
    it; ``measured``: how many runs logged its size (the runs the cost figures are over)."""

    name: str
    score: stats.Summary | None
    cost: dict[str, stats.Summary | None]
    measured: int

    def mean(self, figure: str) -> float | None:
        """The figure's mean over the runs that logged it; ``None`` where none did."""
        summary = self.cost.get(figure)
        return None if summary is None else summary.mean


@dataclass(frozen=True)
class Int8Test:
    """int8 against fp32 on the row's runs: ``diff`` (points, mean over runs of the logged
    scores) always where both were logged; the paired tests where every run has int8 predictions,
    else ``note`` says why not; ``holm``: whether the bootstrap survives Holm's correction."""

    diff: float | None
    bootstrap: stats.BootstrapResult | None
    mcnemar: stats.McNemarResult | None
    note: str
    holm: bool | None = None


@dataclass(frozen=True)
class CostRow:
    row: Row
    fp32: Variant
    int8: Variant
    test: Int8Test
    threads: tuple[int, ...]  # the distinct ``cost_threads`` of its runs

    def variant(self, name: str) -> Variant:
        return self.fp32 if name == "fp32" else self.int8


@dataclass(frozen=True)
class CostTable:
    """The table's rows; ``missing``: why there is no table (no run of the sweep measured its
    cost), empty when there is one."""

    rows: tuple[CostRow, ...]
    metric: str
    missing: str = ""


def cost_table(client: MlflowClient, rows: Sequence[Row], fp32: Predictions, int8: Predictions,
               task: TaskMetrics) -> CostTable:
    """Each configuration with runs (``rows``: each once, as the plots take them) as two
    variants; ``fp32``/``int8``: the runs' per-example predictions of each."""
    rows = [row for row in rows if row.runs]
    if not any(dict(run.cost) for row in rows for run in row.runs):
        return CostTable((), task.main, missing=(
            f"none of this sweep's {sum(len(r.runs) for r in rows)} runs logged a model's cost "
            f"({', '.join(COST)}): they were trained before trainers/models/compressed.py measured it, and a "
            "finished trial is reused, not trained again; to measure it, train them again (their folders "
            "under the storage's models/ deleted, or a fresh --storage)"))
    built = [CostRow(row, _variant("fp32", row.runs, task.main), _variant("int8", row.runs, task.main),
                     _int8_test(client, row.runs, fp32, int8, task.main), _threads(row.runs))
             for row in rows]
    decisions = holm([r.test.bootstrap.p_value if r.test.bootstrap else None for r in built])
    return CostTable(tuple(replace(r, test=replace(r.test, holm=d)) for r, d in zip(built, decisions)),
                     task.main)


def score(run: TrialRun, metric: str, variant: str) -> float | None:
    """The run's test ``metric`` × 100 of one variant; ``None`` where it was not logged."""
    return run_value(run, metric + SUFFIX[variant])


def _variant(name: str, runs: Sequence[TrialRun], metric: str) -> Variant:
    scores = [v for v in (score(run, metric, name) for run in runs) if v is not None]
    cost = {}
    for figure in COST:
        values = [dict(run.cost)[figure + SUFFIX[name]] for run in runs
                  if figure + SUFFIX[name] in dict(run.cost)]
        cost[figure] = stats.mean_std(values) if values else None
    measured = sum(1 for run in runs if COST[0] + SUFFIX[name] in dict(run.cost))
    return Variant(name, stats.mean_std(scores) if scores else None, cost, measured)


def _threads(runs: Sequence[TrialRun]) -> tuple[int, ...]:
    return tuple(sorted({int(dict(run.cost)[THREADS]) for run in runs if THREADS in dict(run.cost)}))


def _int8_test(client: MlflowClient, runs: Sequence[TrialRun], fp32: Predictions, int8: Predictions,
               metric: str) -> Int8Test:
    pairs = [(score(run, metric, "int8"), score(run, metric, "fp32")) for run in runs]
    if any(a is None or b is None for a, b in pairs):
        return Int8Test(None, None, None, "no int8 score logged")
    diff = float(np.mean([a - b for a, b in pairs]))
    lacking = [run.run_id for run in runs if not _has_int8_predictions(client, run.run_id)]
    if lacking:
        return Int8Test(diff, None, None, f"untested: no int8 predictions in run {lacking[0][:8]}")
    labels, said_int8, said_fp32 = [], [], []
    for run in runs:
        joined = int8.get(run.run_id).merge(fp32.get(run.run_id), on="index", suffixes=("_a", "_b"))
        if joined.empty or not (joined["label_a"] == joined["label_b"]).all():
            return Int8Test(diff, None, None, f"untested: run {run.run_id[:8]}'s int8 and fp32 "
                                              "predictions are not of the same test examples")
        labels.append(joined["label_a"])
        said_int8.append(joined["prediction_a"])
        said_fp32.append(joined["prediction_b"])
    y, a, b = (np.concatenate(parts) for parts in (labels, said_int8, said_fp32))
    bootstrap = (PAIRED_BOOTSTRAPS[metric](y, a, b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
                 if metric in PAIRED_BOOTSTRAPS
                 else stats.paired_bootstrap(a == y, b == y, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED))
    return Int8Test(diff, bootstrap, stats.mcnemar_exact(a == y, b == y), "")


def _has_int8_predictions(client: MlflowClient, run_id: str) -> bool:
    """Listed, not downloaded: a run without them is an older run, not a broken one."""
    folder = INT8_PREDICTIONS_ARTIFACT.rpartition("/")[0]
    return any(f.path == INT8_PREDICTIONS_ARTIFACT for f in client.list_artifacts(run_id, folder))
