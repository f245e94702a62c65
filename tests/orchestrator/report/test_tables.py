"""Tables 1–3: the rows a sweep owes, the numbers in them, the original work's beside them in
paper sweeps, and "not run" where a sweep has a gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.render import NOT_RUN
from tests.orchestrator.report.store import (
    PARAMS,
    PNG_MAGIC,
    Spec,
    Store,
    add_sweep,
    make_store,
    markdown_rows,
    read_csv,
)


def test_table1_rows_and_numbers(paper: ReportResult) -> None:
    rows = markdown_rows(paper.out_dir / "table1.md")
    # Seeds 0 and 1 get 20 and 21 of 200 wrong: 90.0 and 89.5 → 89.75 ± 0.35.
    kd = rows["KD BERT→DistilBERT"]
    assert kd[1] == "89.75 ± 0.35 (n=2)"
    # Times Smaller: mean(BERT, RoBERTa) ÷ DistilBERT, whatever the row's teachers.
    assert kd[3] == "66,955,010" and kd[4] == "1.7×"
    assert rows["MetaDistil BERT+RoBERTa→DistilBERT"][4] == "1.7×"
    assert rows["BERT (teacher)"][4] == "–"
    assert rows["DistilBERT (fine-tuned)"][4] == "1.7×"
    # Paper sweep: the original work's number beside each row, rows it owes marked "not run".
    assert rows["BERT (teacher)"][5] == "93.80"
    assert rows["KD BERT→DistilBERT"][5] == "93.10"
    assert rows["TinyBERT (fine-tuned)"][1:3] == ["not run", "not run"]
    assert rows["TinyBERT (fine-tuned)"][5] == "89.95"
    assert paper.table1_markdown in (paper.out_dir / "table1.md").read_text(encoding="utf-8")


def test_tables_2_and_3_pair_variants_with_their_base(paper: ReportResult) -> None:
    warm = markdown_rows(paper.out_dir / "table2.md")
    assert warm["MetaDistil BERT→DistilBERT"][1] == "94.75 ± 0.35 (n=2)"
    assert warm["+ warm start (1 epoch)"][1] == "91.75 ± 0.35 (n=2)"
    assert warm["+ warm start (1 epoch)"][5] == "92.45 ‡"
    noise = markdown_rows(paper.out_dir / "table3.md")
    assert noise["MetaDistil BERT+RoBERTa→DistilBERT"][1] == "93.75 ± 0.35 (n=2)"
    assert noise["+ noise p=0.1"][1] == "87.75 ± 0.35 (n=2)"
    assert noise["+ noise p=0.1"][5] == "88.50 ‡"


def test_paper_space_tag_adds_original_work(store: Store, tmp_path: Path) -> None:
    result = build_report(store.client, "cpu_on_paper_space", tmp_path)
    assert "| Original work |" in result.table1_markdown
    # The original work's rows make BERT a teacher here, with 93.80 beside it.
    assert "| BERT (teacher) | 97.00 (n=1) |" in result.table1_markdown
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "- Search space: `paper`" in readme and "sweep run `" in readme


def test_partial_sweep_marks_the_gap(partial: ReportResult) -> None:
    rows = markdown_rows(partial.out_dir / "table1.md")
    assert rows["KD BERT→DistilBERT"][1:] == [NOT_RUN] * 5
    assert rows["MetaDistil BERT→DistilBERT"][1] == "95.00 (n=1)"
    # One seed: Wilson interval over the 200 test examples, marked †.
    assert rows["MetaDistil BERT→DistilBERT"][2].endswith("†")
    assert "Original work" not in (partial.out_dir / "table1.md").read_text(encoding="utf-8")
    table2 = markdown_rows(partial.out_dir / "table2.md")
    assert table2["no warm-start runs in this sweep"][1] == NOT_RUN
    significance = read_csv(partial.out_dir / "significance.csv")
    assert list(significance["note"]) == ["KD baseline not run"]
    for plot in ("accuracy_vs_params.png", "val_accuracy_per_epoch.png"):
        assert (partial.out_dir / "plots" / plot).read_bytes().startswith(PNG_MAGIC)


def test_times_smaller_is_the_papers(tmp_path: Path, empty_database: Path) -> None:
    """The original work's 1.7× and 8.2×: mean(BERT, RoBERTa) ÷ DistilBERT and ÷ TinyBERT, from the
    real parameter counts, for every row of a student whatever its teachers. RoBERTa has no
    fine-tune run here: its count comes from the distillation from it alone."""
    store = make_store(tmp_path / "mlflow", empty_database)
    add_sweep(store, "times_smaller", (
        Spec("finetune", (), "bert", 6), Spec("finetune", (), "distilbert", 14),
        Spec("finetune", (), "tinybert", 30), Spec("kd", ("bert",), "distilbert", 20),
        Spec("kd", ("roberta",), "tinybert", 40)), (0,), {})
    result = build_report(store.client, "times_smaller", tmp_path / "out")
    mean = (PARAMS["bert"] + PARAMS["roberta"]) / 2
    assert round(mean / PARAMS["distilbert"], 1) == 1.7 and round(mean / PARAMS["tinybert"], 1) == 8.2
    rows = markdown_rows(result.out_dir / "table1.md")
    for label in ("DistilBERT (fine-tuned)", "KD BERT→DistilBERT"):
        assert rows[label][4] == "1.7×", label
    for label in ("TinyBERT (fine-tuned)", "KD RoBERTa→TinyBERT"):
        assert rows[label][4] == "8.2×", label
    assert rows["BERT (teacher)"][4] == "–"
    frame = read_csv(result.out_dir / "table1.csv").set_index("method")
    assert float(frame.loc["KD RoBERTa→TinyBERT", "times_smaller"]) == pytest.approx(
        mean / PARAMS["tinybert"])
    readme = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "the mean parameter count of the sweep's teacher models (BERT, RoBERTa) ÷ the student's" in readme
