"""The task's own metrics table: an MRPC-like sweep (test_f1 beside test_accuracy) gets
``task_metrics.md`` headed by F1 with a paired bootstrap on F1; an SST-2 sweep gets none."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from orchestrator.report.build import ReportResult, build_report
from tests.orchestrator.report.store import LABELS, PARTIAL_SPECS, Store, add_sweep, make_store, markdown_rows


def _f1(wrong: int) -> float:
    predictions = LABELS.copy()
    predictions[:wrong] = 1 - predictions[:wrong]
    return float(f1_score(LABELS, predictions))


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory: pytest.TempPathFactory, empty_database) -> ReportResult:
    store: Store = make_store(tmp_path_factory.mktemp("mrpc-store"), empty_database)
    experiment_id = add_sweep(store, "mrpc_mini", PARTIAL_SPECS, (0,), {})
    wrong = {spec.student + spec.method: spec.wrong for spec in PARTIAL_SPECS}
    for run in store.client.search_runs([experiment_id], "tags.seed = '0'"):
        tags = run.data.tags
        store.client.log_metric(run.info.run_id, "test_f1", _f1(wrong[tags["student"] + tags["method"]]))
        store.client.set_tag(run.info.run_id, "task", "mrpc")
    return build_report(store.client, "mrpc_mini", tmp_path_factory.mktemp("mrpc-out"))


def test_table_is_headed_by_f1_then_accuracy_with_a_paired_f1_bootstrap(mrpc: ReportResult) -> None:
    path = mrpc.out_dir / "task_metrics.md"
    assert path in mrpc.files and (mrpc.out_dir / "task_metrics.csv") in mrpc.files
    header = path.read_text(encoding="utf-8").splitlines()[2]
    assert header.startswith("| Method | F1 (%) | Accuracy (%) | Δ F1 vs fine-tuned student")
    rows = markdown_rows(path)
    meta = next(cells for label, cells in rows.items() if label.startswith("MetaDistil"))
    assert meta[1] == f"{100 * _f1(10):.2f}" and meta[2] == f"{100 * (200 - 10) / 200:.2f}"
    assert meta[3].startswith(f"{100 * (_f1(10) - _f1(14)):+.2f} [")
    finetuned = next(cells for label, cells in rows.items() if "DistilBERT" in label and "→" not in label)
    assert finetuned[3] == "–"
    readme = (mrpc.out_dir / "README.md").read_text(encoding="utf-8")
    assert "## The task's metrics" in readme and "MRPC test accuracy of teachers" in readme
    assert "Accuracy: MRPC test accuracy in %" in readme


def test_an_accuracy_only_sweep_has_no_task_table(partial: ReportResult) -> None:
    assert not (partial.out_dir / "task_metrics.md").exists()
    assert "SST-2 test accuracy of teachers" in (partial.out_dir / "README.md").read_text(encoding="utf-8")
    assert np.all([not f.name.startswith("task_metrics") for f in partial.files])
