"""Paired significance tests: each distilled configuration against its fine-tuned student (does
distilling help at all?) and, but KD itself, against KD with the same teacher(s) and student, both
of the row's recipe (the fine-tuned student of another recipe when the row's has no runs, said in
the row).

Seed s of a row is paired with seed s of the baseline (same data split, same test examples); the
per-example predictions of both are pooled over their common seeds, matched on the example's
``index``, and tested with a paired bootstrap of Δ = metric(row) − metric(baseline), the metric
being the task's main one (:mod:`orchestrator.report.metrics`), and an exact McNemar test on
correctness (:mod:`orchestrator.report.stats`):

- accuracy: ``stats.paired_bootstrap`` of the per-example correctness;
- F1 of the positive class, ``2·TP / (2·TP + FP + FN)``: ``stats.paired_bootstrap_f1``;
- Matthews' correlation, ``(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``:
  ``stats.paired_bootstrap_matthews``.

F1 and Matthews' correlation are not means over examples: over pooled seeds they are those of the
pooled examples' confusion counts. McNemar stays on correctness (the examples only one of the two
gets right), the one per-example test there is; for F1 or Matthews it tests accuracy, not Δ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from orchestrator.report import stats
from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import GroupKey, TrialRun, is_baseline
from orchestrator.report.tables import Row, Table
from orchestrator.tracking import names as tracking
from trainers.methods import registry as methods

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
HOLM_ALPHA = 0.05  # the family-wise error rate the Holm columns hold the table's tests to
# The main metrics other than accuracy, bootstrapped from labels and predicted classes.
PAIRED_BOOTSTRAPS = {"f1": stats.paired_bootstrap_f1, "matthews": stats.paired_bootstrap_matthews}


@dataclass(frozen=True)
class Comparison:
    """A distilled configuration against a baseline row: the fine-tuned student, or KD with the
    same teacher(s) and student. ``note``: why there is no test, or whose fine-tuned student the
    baseline is when not the row's recipe's."""

    row: Row
    baseline: Row
    seeds: tuple[int, ...]
    bootstrap: stats.BootstrapResult | None
    mcnemar: stats.McNemarResult | None
    note: str


@dataclass(frozen=True)
class RowTests:
    """A distilled row's paired tests: against its fine-tuned student and (but KD itself) KD."""

    finetuned: Comparison
    kd: Comparison | None

    @property
    def row(self) -> Row:
        return self.finetuned.row


def comparisons(tables: Sequence[Table], groups: dict[GroupKey, tuple[TrialRun, ...]],
                names: SweepNames, predictions: Predictions, metric: str = "accuracy") -> list[RowTests]:
    """Every distilled configuration with runs against the fine-tuned student (does distilling
    help at all?) and, but KD itself, against KD with the same teacher(s), student and recipe (no
    noise, no warm start: the method each row's method names as its ``compared_with``), a teacher
    assistant chain against its direct distillation (``_reference``); each paired on the seeds
    both rows have, Δ of ``metric``."""
    seen: set[GroupKey] = set()
    result = []
    for row in (row for table in tables for row in table.rows):
        if is_baseline(row.key.method) or not row.runs or row.key in seen:
            continue
        seen.add(row.key)
        row = replace(row, label=full_label(row.key, names))
        finetuned, elsewhere = _finetuned_baseline(row.key, groups, names)
        reference = _reference(row.key)
        kd = _baseline(reference, groups, names) if reference else None
        against_finetuned = compare(row, finetuned, predictions, "fine-tuned baseline", metric)
        if elsewhere:
            against_finetuned = replace(against_finetuned,
                                        note="; ".join(filter(None, (elsewhere, against_finetuned.note))))
        result.append(RowTests(against_finetuned, None if kd is None or row.key == kd.key
                               else compare(row, kd, predictions, "KD baseline", metric)))
    return result


def _reference(key: GroupKey) -> GroupKey | None:
    """The second baseline of a row: a teacher-assistant chain's is the direct distillation of the
    same student by the same method and variations (Mirzadeh et al.'s comparison); any other's is
    the plain configuration of the method its method is ``compared_with`` (KD), if it names one."""
    if key.assistants:
        return replace(key, assistants=())
    known = methods.known(key.method)
    return (GroupKey(known.compared_with, key.teachers, key.student, recipe=key.recipe)
            if known and known.compared_with else None)


def _finetuned_baseline(key: GroupKey, groups: dict[GroupKey, tuple[TrialRun, ...]],
                        names: SweepNames) -> tuple[Row, str]:
    """The fine-tuned student of the row's recipe; when that has no runs, the first recipe's (by
    name) that has, with a note naming it: any fine-tuned student beats no baseline."""
    own = GroupKey(methods.baseline().name, (), key.student, recipe=key.recipe)
    if own not in groups:
        for recipe in names.recipes:
            other = replace(own, recipe=recipe)
            if other in groups:
                return (_baseline(other, groups, names),
                        f"against recipe {recipe}'s fine-tuned student: {key.recipe} has none")
    return _baseline(own, groups, names), ""


def _baseline(key: GroupKey, groups: dict[GroupKey, tuple[TrialRun, ...]], names: SweepNames) -> Row:
    return Row(full_label(key, names), key, groups.get(key, ()))


def compare(row: Row, baseline: Row, predictions: Predictions, what: str = "KD baseline",
            metric: str = "accuracy") -> Comparison:
    """Pool the per-example predictions of both rows over their common seeds, then test.

    Seed s of the row is paired with seed s of the baseline (same data split and test examples);
    examples are matched on ``index``. Δ = metric(row) − metric(baseline); McNemar on correctness.
    """
    if not baseline.runs:
        return Comparison(row, baseline, (), None, None, f"{what} not run")
    by_seed = {run.seed: run for run in baseline.runs}
    pairs = [(run, by_seed[run.seed]) for run in row.runs if run.seed in by_seed]
    if not pairs:
        return Comparison(row, baseline, (), None, None, f"no seed in common with the {what}")
    labels, said_row, said_base = [], [], []
    for run, base in pairs:
        mine, theirs = predictions.get(run.run_id), predictions.get(base.run_id)
        if mine is None or theirs is None:
            missing = run.run_id if mine is None else base.run_id
            return Comparison(row, baseline, (), None, None,
                              f"no {tracking.PREDICTIONS_ARTIFACT} in run {missing}")
        joined = mine.merge(theirs, on="index", suffixes=("_a", "_b"))
        if joined.empty or not (joined["label_a"] == joined["label_b"]).all():
            return Comparison(row, baseline, (), None, None,
                              f"seed {run.seed}: the two runs were tested on different examples")
        labels.append(joined["label_a"])
        said_row.append(joined["prediction_a"])
        said_base.append(joined["prediction_b"])
    y, said_a, said_b = (np.concatenate(parts) for parts in (labels, said_row, said_base))
    a, b = said_a == y, said_b == y
    bootstrap = (PAIRED_BOOTSTRAPS[metric](y, said_a, said_b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
                 if metric in PAIRED_BOOTSTRAPS
                 else stats.paired_bootstrap(a, b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED))
    return Comparison(row, baseline, tuple(run.seed for run, _ in pairs), bootstrap,
                      stats.mcnemar_exact(a, b), "")


def holm(p_values: Sequence[float | None], alpha: float = HOLM_ALPHA) -> list[bool | None]:
    """Which of a family's tests still reject at ``alpha`` after Holm's step-down correction
    (Holm 1979: the i-th smallest of m p-values against α/(m − i + 1), stopping at the first that
    fails), by statsmodels; ``None`` where there was no test."""
    from statsmodels.stats.multitest import multipletests

    tested = [p for p in p_values if p is not None]
    if not tested:
        return [None] * len(p_values)
    reject = iter(multipletests(tested, alpha=alpha, method="holm")[0].tolist())
    return [None if p is None else next(reject) for p in p_values]


def significance_notes(metric: str = "accuracy") -> list[str]:
    """The significance table's footnotes; the accuracy ones as they always were."""
    pooled = (f"Paired tests on the per-example test predictions ({tracking.PREDICTIONS_ARTIFACT}): seed s "
              "of a row is paired with seed s of the fine-tuned student, and of the KD row with the same "
              "teacher(s) and student (no noise, no warm start), both of the row's recipe (the fine-tuned "
              "student of another recipe where the row's has no runs, as its row says); examples are "
              "matched by index and pooled over the common seeds.")
    bootstrap = (f"paired bootstrap ({BOOTSTRAP_RESAMPLES:,} resamples of the pooled examples, seed "
                 f"{BOOTSTRAP_SEED}; p ≥ 1/{BOOTSTRAP_RESAMPLES + 1:,})")
    if metric not in PAIRED_BOOTSTRAPS:
        return [pooled,
                f"Δ = accuracy(row) − accuracy(baseline); 95 % CI and two-sided p from a {bootstrap}. "
                "McNemar: exact binomial test on the examples only one of the two gets right. Pooling "
                "treats examples as independent across seeds; the spread over seeds is in the tables.",
                holm_note()]
    formula = {"f1": "F1 of the positive class, 2·TP / (2·TP + FP + FN)",
               "matthews": "Matthews correlation × 100, (TP·TN − FP·FN) / "
                           "√((TP+FP)(TP+FN)(TN+FP)(TN+FN))"}[metric]
    name = {"f1": "F1", "matthews": "MCC"}[metric]
    return [pooled,
            f"Δ = {name}(row) − {name}(baseline), the task's main metric: {formula}, of the pooled "
            f"examples' counts; 95 % CI and two-sided p from a {bootstrap} that resamples examples and "
            "recomputes both scores.",
            "McNemar: exact binomial test on correctness, the examples only one of the two gets right, "
            f"so it tests accuracy, not Δ {name} (there is no per-example {name} to pair). Pooling "
            "treats examples as independent across seeds; the spread over seeds is in the tables.",
            holm_note()]


def holm_note() -> str:
    return (f"Holm: whether the difference survives Holm's correction over the table at α = {HOLM_ALPHA:g} "
            "(family-wise), each column of bootstrap p-values a family of its own; '–' where there was "
            "no test.")
