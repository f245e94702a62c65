"""The paired tests: against KD and against the fine-tuned student, on the pooled per-example
predictions of the common seeds."""

from __future__ import annotations

import pytest

from orchestrator.report.build import ReportResult
from tests.orchestrator.report.store import N_TEST, read_csv


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
