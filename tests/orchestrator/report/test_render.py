"""The rendered tables: every Markdown and CSV cell traces to its MLflow runs; LaTeX is booktabs
and escaped."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.report.build import ReportResult
from orchestrator.report.render import NOT_RUN
from tests.orchestrator.report.store import PAPER_SPECS, Store, markdown_rows, read_csv


def test_every_cell_traces_to_run_ids(paper: ReportResult, store: Store) -> None:
    experiment = store.client.get_experiment_by_name("paper_mini")
    assert experiment is not None
    failed = {r.info.run_id for r in store.client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FAILED'")}
    assert len(failed) == 1
    for name in ("table1", "table2", "table3"):
        markdown = markdown_rows(paper.out_dir / f"{name}.md")
        for row in read_csv(paper.out_dir / f"{name}.csv").itertuples():
            if row.status == NOT_RUN:
                assert row.run_ids == "" and markdown[row.method][-1] == NOT_RUN
                continue
            ids = row.run_ids.split(";")
            assert not failed & set(ids)
            runs = [store.client.get_run(run_id) for run_id in ids]
            for run in runs:
                tags = run.data.tags
                assert run.info.status == "FINISHED"
                assert (tags["method"], tags["teachers"], tags["student"]) == (
                    row.config_method, row.teachers, row.student)
                assert float(tags["noise_p"]) == float(row.noise_p)
                assert int(tags["warmup_epochs"]) == int(row.warmup_epochs)
                assert int(run.data.metrics["student_params"]) == int(row.params)
            accuracies = [100 * run.data.metrics["test_accuracy"] for run in runs]
            assert int(row.n) == len(ids) == len({run.data.tags["seed"] for run in runs})
            assert row.seeds == ";".join(run.data.tags["seed"] for run in runs)
            assert float(row.accuracy_mean) == pytest.approx(np.mean(accuracies))
            assert float(row.accuracy_std) == pytest.approx(np.std(accuracies, ddof=1))
            assert markdown[row.method][-1] == ", ".join(run_id[:8] for run_id in ids)
    runs_csv = read_csv(paper.out_dir / "runs.csv")
    assert set(runs_csv["run_id"]).isdisjoint(failed)
    assert len(set(runs_csv["run_id"])) == len(PAPER_SPECS) * 2


def test_latex_is_booktabs_and_escaped(paper: ReportResult) -> None:
    tex = (paper.out_dir / "table1.tex").read_text(encoding="utf-8")
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    body = [line for line in tex.splitlines() if not line.startswith("%")]
    assert not any(ch in line for line in body for ch in "±→×†‡")
    assert r"KD BERT$\rightarrow$DistilBERT & 89.75 $\pm$ 0.35 (n=2)" in tex
    assert all(line.count("%") == line.count(r"\%") for line in body)
