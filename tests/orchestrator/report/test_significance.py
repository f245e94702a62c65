"""The paired tests: against KD and against the fine-tuned student, on the pooled per-example
predictions of the common seeds; Δ of the task's main metric (SST-2: accuracy; MRPC: F1; CoLA:
Matthews' correlation), McNemar on correctness whatever the metric."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from orchestrator.report import stats
from orchestrator.report.build import ReportResult
from orchestrator.report.significance import holm
from tests.orchestrator.report.store import LABELS, N_TEST, false_negatives, markdown_rows, read_csv


def test_significance_against_kd(paper: ReportResult) -> None:
    frame = read_csv(paper.out_dir / "significance.csv").set_index("method")
    # Seed 0: MetaDistil wrong on 0–9, KD on 0–19; seed 1: 0–10 vs 0–20 → 20 discordant pairs,
    # all for MetaDistil, over 400 pooled examples: Δ = +5 points, McNemar p = 2 · 0.5²⁰.
    row = frame.loc["MetaDistil BERT→DistilBERT"]
    assert row.baseline == "KD BERT→DistilBERT" and row.seeds == "0;1"
    assert int(row.n_examples) == 2 * N_TEST
    assert (int(row.only_method_correct), int(row.only_baseline_correct)) == (20, 0)
    assert float(row.diff_points) == pytest.approx(5.0)
    assert float(row.p_mcnemar) == pytest.approx(2 * 0.5 ** 20)
    assert 0 < float(row.ci_low_points) < 5.0 < float(row.ci_high_points)
    assert float(row.p_bootstrap) < 0.001
    warm = frame.loc["MetaDistil BERT→DistilBERT + warm start (1 epoch)"]
    assert (int(warm.only_method_correct), int(warm.only_baseline_correct)) == (8, 0)
    multi = frame.loc["MetaDistil BERT+RoBERTa→DistilBERT"]
    assert multi.note == "KD baseline not run" and multi.p_mcnemar == ""
    # Beside it, against the fine-tuned student (wrong on 0–13 and 0–14): 4 + 4 discordant pairs,
    # all for MetaDistil: Δ = +2 points; KD (wrong on 0–19, 0–20) loses 6 + 6: Δ = −3 points.
    assert row.finetuned_baseline == "DistilBERT (fine-tuned)"
    assert float(row.finetuned_diff_points) == pytest.approx(2.0)
    assert float(row.finetuned_p_mcnemar) == pytest.approx(2 * 0.5 ** 8)
    kd = frame.loc["KD BERT→DistilBERT"]
    assert float(kd.finetuned_diff_points) == pytest.approx(-3.0)
    assert kd.note == "is the KD baseline" and kd.diff_points == ""  # not tested against itself
    markdown = (paper.out_dir / "significance.md").read_text(encoding="utf-8")
    assert "+5.00 [" in markdown


def test_a_pair_tasks_delta_is_f1s(mrpc: ReportResult) -> None:
    """MetaDistil misses 10 of the 100 positives, the fine-tuned student 14, KD 20 (no false
    positive): F1 = 180/190, 172/186, 160/180, so Δ F1 = +2.26 points against the fine-tuned student
    (Δ accuracy would be +2.00) and +5.85 against KD; McNemar counts correctness: 10 / 0."""
    assert 100 * (180 / 190 - 172 / 186) == pytest.approx(2.2637, abs=1e-4)
    assert 100 * (180 / 190 - 160 / 180) == pytest.approx(5.8480, abs=1e-4)
    frame = read_csv(mrpc.out_dir / "significance.csv").set_index("method")
    assert set(frame["metric"]) == {"f1"}
    row = frame.loc["MetaDistil BERT→DistilBERT"]
    assert float(row.finetuned_diff_points) == pytest.approx(100 * (180 / 190 - 172 / 186))
    assert float(row.diff_points) == pytest.approx(100 * (180 / 190 - 160 / 180))
    assert float(row.diff_points) == pytest.approx(
        100 * (f1_score(LABELS, false_negatives(10)) - f1_score(LABELS, false_negatives(20))))
    expected = stats.paired_bootstrap_f1(LABELS, false_negatives(10), false_negatives(20))
    assert (float(row.ci_low_points), float(row.ci_high_points), float(row.p_bootstrap)) == \
        pytest.approx((100 * expected.ci_low, 100 * expected.ci_high, expected.p_value))
    assert (int(row.only_method_correct), int(row.only_baseline_correct)) == (10, 0)
    assert float(row.p_mcnemar) == pytest.approx(2 * 0.5 ** 10)
    kd = frame.loc["KD BERT→DistilBERT"]
    assert float(kd.finetuned_diff_points) == pytest.approx(100 * (160 / 180 - 172 / 186))
    assert kd.note == "is the KD baseline"
    # Only distilled configurations are tested: neither the teacher nor the fine-tuned student.
    assert set(frame.index) == {"KD BERT→DistilBERT", "MetaDistil BERT→DistilBERT"}
    path = mrpc.out_dir / "significance.md"
    header = path.read_text(encoding="utf-8").splitlines()[2]
    assert header.startswith("| Method | Δ F1 vs. fine-tuned student (points) [95 % CI] | p vs. fine-tuned |")
    assert "| Δ F1 (points) [95 % CI] | p (bootstrap) |" in header and "p (McNemar, correctness)" in header
    cells = markdown_rows(path)["MetaDistil BERT→DistilBERT"]
    assert cells[1].startswith("+2.26 [") and cells[7].startswith("+5.85 [")
    assert cells[3] in ("yes", "no") and cells[9] in ("yes", "no")  # Holm over the table's tests
    readme = (mrpc.out_dir / "README.md").read_text(encoding="utf-8")
    assert "## Significance of F1 against the fine-tuned student and KD" in readme
    assert "Δ = F1(row) − F1(baseline)" in readme and "McNemar: exact binomial test on correctness" in readme


def test_cola_delta_is_matthews_over_pooled_seeds(cola: ReportResult) -> None:
    # Seeds 0 and 1 pooled: MetaDistil misses 10 and 11 positives, KD 20 and 21.
    labels = np.concatenate([LABELS, LABELS])
    meta = np.concatenate([false_negatives(10), false_negatives(11)])
    kd = np.concatenate([false_negatives(20), false_negatives(21)])
    row = read_csv(cola.out_dir / "significance.csv").set_index("method").loc["MetaDistil BERT→DistilBERT"]
    assert row.metric == "matthews" and row.seeds == "0;1" and int(row.n_examples) == 2 * N_TEST
    assert float(row.diff_points) == pytest.approx(
        100 * (matthews_corrcoef(labels, meta) - matthews_corrcoef(labels, kd)))
    assert (int(row.only_method_correct), int(row.only_baseline_correct)) == (20, 0)
    markdown = (cola.out_dir / "significance.md").read_text(encoding="utf-8")
    assert "Δ Matthews corr. (points) [95 % CI]" in markdown


def test_an_accuracy_only_sweep_keeps_its_significance_columns(paper: ReportResult) -> None:
    assert "metric" not in read_csv(paper.out_dir / "significance.csv").columns
    header = (paper.out_dir / "significance.md").read_text(encoding="utf-8").splitlines()[2]
    assert header.startswith("| Method | Δ vs. fine-tuned student (points) [95 % CI] |")
    assert "| Δ accuracy (points) [95 % CI] |" in header and header.endswith("| p (McNemar) | Runs |")


def test_holm_rejects_step_down_from_the_smallest_p() -> None:
    """Holm (1979) by hand: sorted p 0.01, 0.03, 0.04 against 0.05/3, 0.05/2, 0.05/1. The first
    rejects (0.01 ≤ 0.0167); the second does not (0.03 > 0.025), which stops the procedure, so
    0.04 is not rejected either although it is below 0.05. No test, no decision."""
    assert holm([0.04, 0.01, None, 0.03]) == [False, True, None, False]
    assert holm([0.001, 0.02]) == [True, True]  # 0.001 ≤ 0.025, then 0.02 ≤ 0.05
    assert holm([None]) == [None] and holm([]) == []
