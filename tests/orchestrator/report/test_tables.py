"""Tables 1–3: the rows a sweep owes, the numbers in them, the original work's beside them in
SST-2 paper sweeps (never another task's), "not run" where a sweep has a gap, and the columns of
the task's metrics (SST-2: accuracy alone, as ever; MRPC: F1, then accuracy; CoLA: Matthews'
correlation, then accuracy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from orchestrator.report import stats
from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.render import NOT_RUN
from tests.orchestrator.report.store import (
    LABELS,
    MRPC_SPECS,
    PARAMS,
    PNG_MAGIC,
    Spec,
    Store,
    add_sweep,
    false_negatives,
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


def test_a_paper_sweep_of_another_task_sets_no_sst2_numbers_beside_it(tmp_path: Path,
                                                                      empty_database: Path) -> None:
    """The original work's numbers are SST-2 accuracies: an MRPC sweep of paper.yaml gets neither
    the column nor the rows owed to the original work's configurations."""
    store = make_store(tmp_path / "mlflow", empty_database)
    add_sweep(store, "paper_mrpc", MRPC_SPECS, (0,), {"space": "paper"})
    result = build_report(store.client, "paper_mrpc", tmp_path / "out")
    written = {path.name: path.read_text(encoding="utf-8") for path in (tmp_path / "out").glob("*.*")}
    assert {"table1.md", "table1.csv", "table1.tex", "README.md"} <= set(written)
    assert not [name for name, text in written.items()
                if "Original work" in text or "original_work" in text or "93.80" in text]
    assert "TinyBERT (fine-tuned)" not in markdown_rows(tmp_path / "out" / "table1.md")  # owed to it alone
    assert "| Method | F1 (mean ± std, n) | Accuracy (mean ± std, n) |" in result.table1_markdown


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


def test_an_accuracy_only_sweep_keeps_its_columns(partial: ReportResult) -> None:
    lines = (partial.out_dir / "table1.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ("**Table 1: SST-2 test accuracy of teachers, fine-tuned students, KD and "
                        "MetaDistil**")
    assert lines[2] == ("| Method | Accuracy (mean ± std, n) | 95 % interval | No. of Parameters | "
                        "Times Smaller | Runs |")
    columns = list(read_csv(partial.out_dir / "table1.csv").columns)
    assert columns[11:16] == ["accuracy_mean", "accuracy_std", "n", "ci_low", "ci_high"]
    assert "test_f1" not in read_csv(partial.out_dir / "runs.csv").columns
    readme = (partial.out_dir / "README.md").read_text(encoding="utf-8")
    assert "Accuracy: SST-2 test accuracy in %, mean ± sample standard deviation" in readme
    assert not any(f.name.startswith("task_metrics") for f in partial.files)
    assert not list(partial.out_dir.glob("task_metrics*"))


def test_a_pair_task_table_is_headed_by_f1_then_accuracy(mrpc: ReportResult) -> None:
    """MRPC's errors here are false negatives: MetaDistil misses 10 of 100 paraphrases,
    F1 = 2·90 / (2·90 + 10) = 94.74 %, accuracy 95.00 %."""
    lines = (mrpc.out_dir / "table1.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ("**Table 1: MRPC test F1 and accuracy of teachers, fine-tuned students, KD "
                        "and MetaDistil**")
    assert lines[2] == ("| Method | F1 (mean ± std, n) | Accuracy (mean ± std, n) | 95 % interval (F1) "
                        "| No. of Parameters | Times Smaller | Runs |")
    rows = markdown_rows(mrpc.out_dir / "table1.md")
    meta = rows["MetaDistil BERT→DistilBERT"]
    assert f1_score(LABELS, false_negatives(10)) == pytest.approx(180 / 190)
    assert meta[1:3] == ["94.74 (n=1)", "95.00 (n=1)"]
    assert rows["BERT (teacher)"][1:3] == ["96.91 (n=1)", "97.00 (n=1)"]  # 188 / 194
    assert rows["KD BERT→DistilBERT"][1:3] == ["88.89 (n=1)", "90.00 (n=1)"]  # 160 / 180
    assert meta[4:6] == ["66,955,010", "1.6×"]
    # One seed: F1's interval is a percentile bootstrap over the run's 200 test examples, marked †.
    low, high = stats.bootstrap_interval("f1", LABELS, false_negatives(10))
    assert meta[3] == f"[{100 * low:.2f}, {100 * high:.2f}] †" and low < 180 / 190 < high
    frame = read_csv(mrpc.out_dir / "table1.csv").set_index("method")
    assert list(frame.columns[10:17]) == ["f1_mean", "f1_std", "accuracy_mean", "accuracy_std", "n",
                                          "f1_ci_low", "f1_ci_high"]
    row = frame.loc["MetaDistil BERT→DistilBERT"]
    assert float(row.f1_mean) == pytest.approx(100 * 180 / 190) and float(row.accuracy_mean) == 95.0
    assert float(row.f1_ci_low) == pytest.approx(100 * low) and row.ci_kind == "bootstrap_test_examples"
    for name in ("table2", "table3"):
        assert "(MRPC test F1 and accuracy)**" in (mrpc.out_dir / f"{name}.md").read_text(encoding="utf-8")
    runs = read_csv(mrpc.out_dir / "runs.csv").set_index("row")
    assert float(runs.loc["MetaDistil BERT→DistilBERT", "test_f1"]) == pytest.approx(100 * 180 / 190)
    readme = (mrpc.out_dir / "README.md").read_text(encoding="utf-8")
    assert "## Table 1: MRPC test F1 and accuracy of teachers" in readme
    assert "F1: MRPC test F1 of the positive class (label 1, “equivalent”) in %" in readme
    assert "Accuracy: MRPC test accuracy in %" in readme and "95 % interval of F1:" in readme
    assert "The task's metrics" not in readme and not list(mrpc.out_dir.glob("task_metrics*"))
    tex = (mrpc.out_dir / "table1.tex").read_text(encoding="utf-8")
    assert r"2$\cdot$TP / (2$\cdot$TP + FP + FN)" in tex


def test_matthews_heads_a_cola_table_over_seeds(cola: ReportResult) -> None:
    """Two seeds: Matthews' correlation × 100 per seed, mean ± std, a t interval over seeds."""
    rows = markdown_rows(cola.out_dir / "table1.md")
    header = (cola.out_dir / "table1.md").read_text(encoding="utf-8").splitlines()[2]
    assert header.startswith("| Method | Matthews corr. (mean ± std, n) | Accuracy (mean ± std, n) | "
                             "95 % interval (Matthews corr.) |")
    values = [100 * matthews_corrcoef(LABELS, false_negatives(w)) for w in (10, 11)]
    # No false positive: MCC = sqrt((100 − w) / (100 + w)) = sqrt(90/110), sqrt(89/111).
    assert values == pytest.approx([100 * (90 / 110) ** 0.5, 100 * (89 / 111) ** 0.5])
    summary = stats.mean_std(values)
    meta = rows["MetaDistil BERT→DistilBERT"]
    assert meta[1] == f"{summary.mean:.2f} ± {summary.std:.2f} (n=2)" and meta[2] == "94.75 ± 0.35 (n=2)"
    low, high = stats.t_interval(values)
    assert meta[3] == f"[{low:.2f}, {high:.2f}]"
    assert read_csv(cola.out_dir / "table1.csv").set_index("method").loc[
        "MetaDistil BERT→DistilBERT", "ci_kind"] == "t_over_seeds"
    readme = (cola.out_dir / "README.md").read_text(encoding="utf-8")
    assert "Matthews corr.: CoLA test Matthews correlation × 100" in readme
