"""build_report: every file of a report lands in its folder, the README embedding the tables and
linking the plots, named by the task's main metric."""

from __future__ import annotations

import pytest

from orchestrator.report.build import ReportResult
from tests.orchestrator.report.store import PNG_MAGIC


def test_writes_tables_plots_and_readme(paper: ReportResult) -> None:
    out = paper.out_dir
    for name in ("table1", "table2", "table3", "significance"):
        for suffix in ("md", "csv", "tex"):
            assert (out / f"{name}.{suffix}").is_file(), f"{name}.{suffix}"
    for plot in ("accuracy_vs_params.png", "val_accuracy_per_epoch.png"):
        data = (out / "plots" / plot).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "(plots/accuracy_vs_params.png)" in readme
    assert "(plots/val_accuracy_per_epoch.png)" in readme
    assert "python -m orchestrator.sweep --name paper_mini" in readme
    assert "2-core CPU test box" in readme
    assert "| MetaDistil BERT+RoBERTa→DistilBERT |" in readme
    assert ("Times Smaller: the mean parameter count of the sweep's teacher models (BERT, RoBERTa) "
            "÷ the student's, as the original work computes it") in readme
    assert set(paper.files) >= {out / "README.md", out / "runs.csv", out / "table1.tex"}


@pytest.mark.parametrize(("report", "metric", "title"), [
    ("paper", "accuracy", "Accuracy vs. parameters"), ("mrpc", "f1", "F1 vs. parameters"),
    ("cola", "matthews", "Matthews corr. vs. parameters")])
def test_plots_are_named_by_the_main_metric(report: str, metric: str, title: str,
                                            request: pytest.FixtureRequest) -> None:
    result: ReportResult = request.getfixturevalue(report)
    plots = result.out_dir / "plots"
    names = {f"{metric}_vs_params.png", f"val_{metric}_per_epoch.png"}
    assert {path.name for path in plots.iterdir()} == names
    assert {plots / name for name in names} <= set(result.files)
    for name in names:
        assert (plots / name).read_bytes().startswith(PNG_MAGIC)
    readme = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert f"[{title}](plots/{metric}_vs_params.png)" in readme
    assert f"(plots/val_{metric}_per_epoch.png)" in readme


def test_hand_written_findings_survive_a_regenerated_report(store, tmp_path) -> None:
    """``findings.md`` beside the report is embedded under Findings, and a regenerated report
    keeps it; without one there is no Findings section."""
    from orchestrator.report.build import build_report

    build_report(store.client, "paper_mini", tmp_path)
    assert "## Findings" not in (tmp_path / "README.md").read_text(encoding="utf-8")
    (tmp_path / "findings.md").write_text("- KD is 0.3 points above fine-tuning [−1.1, +1.7].\n")
    build_report(store.client, "paper_mini", tmp_path)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "## Findings\n\n- KD is 0.3 points above fine-tuning [−1.1, +1.7].\n" in readme
    assert readme.index("## Findings") < readme.index("## Table 1")
