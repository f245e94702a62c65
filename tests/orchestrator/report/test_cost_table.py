"""The report's "size and speed" table and its accuracy–cost plot, from a store whose runs logged
what ``trainers/models/compressed.py`` logs: the int8 score, the cost figures and the int8 predictions.
The int8 variant of each run changes known examples of its fp32 predictions, so the paired test's
counts and Δ are known; one configuration lacks the int8 predictions (an older run), one the cost
altogether (older still), and a sweep whose runs all predate the cost metrics gets a line, not a
table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric

from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.cost_section import NAME, NOT_MEASURED, plot_file
from orchestrator.report.frontier import dominates
from orchestrator.report.metrics import SST2
from orchestrator.tracking import names as tracking
from tests.orchestrator.report.store import (
    LABELS,
    N_TEST,
    PNG_MAGIC,
    Spec,
    Store,
    add_sweep,
    make_store,
    markdown_rows,
    read_csv,
)
from trainers.models.cost_names import COST, INT8, SIZE, THREADS, TIMINGS
from trainers.record.artifacts import INT8_PREDICTIONS_ARTIFACT

TEACHER = Spec("finetune", (), "minilm", 6)
FINETUNED = Spec("finetune", (), "minilm@2", 14)
KD = Spec("kd", ("minilm",), "minilm@2", 20)
META = Spec("metadistil", ("minilm",), "minilm@2", 10)
OLD = Spec("metadistil", ("minilm",), "minilm@2", 12, noise_p=0.1)  # logged before cost was measured
# Per configuration: of its fp32 predictions, int8 gets ``broken`` right ones wrong and ``mended``
# wrong ones right; its size (MB, fp32 and int8) and median latency (ms, fp32 and int8, + seed/2).
INT8_FLIPS = {TEACHER: (4, 2), FINETUNED: (2, 2), KD: (6, 0), META: (1, 3)}
SIZES = {"minilm": (90.9, 58.7), "minilm@2": (62.5, 51.4)}
LATENCIES = {"minilm": (18.0, 11.0), "minilm@2": (7.5, 5.0)}
LABEL = {TEACHER: "MiniLM (teacher)", FINETUNED: "MiniLM@2 (fine-tuned)", KD: "KD MiniLM→MiniLM@2",
         META: "MetaDistil MiniLM→MiniLM@2", OLD: "MetaDistil MiniLM→MiniLM@2 + noise p=0.1"}


def _int8_predictions(spec: Spec, seed: int) -> np.ndarray:
    """The fp32 run gets its first ``wrong + seed`` examples wrong (store.log_run); int8 mends the
    first ``mended`` of those and breaks ``broken`` examples from 150 on, which fp32 gets right."""
    broken, mended = INT8_FLIPS[spec]
    said = LABELS.copy()
    said[mended:spec.wrong + seed] = 1 - said[mended:spec.wrong + seed]
    said[150:150 + broken] = 1 - said[150:150 + broken]
    return said


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Store:
    store = make_store(tmp_path_factory.mktemp("cost"), empty_database)
    experiment = add_sweep(store, "cost_mini", (TEACHER, FINETUNED, KD, META, OLD), (0, 1), {})
    specs = {(s.method, tracking.teachers_tag(s.teachers), s.student, s.noise_p): s for s in LABEL}
    for run in store.client.search_runs([experiment], "tags.method IS NOT NULL"):
        tags = run.data.tags
        spec = specs[tags["method"], tags["teachers"], tags["student"], float(tags["noise_p"])]
        seed = int(tags["seed"])
        if spec == OLD:
            continue
        said = _int8_predictions(spec, seed)
        (size, size8), (p50, p50_8) = SIZES[spec.student], LATENCIES[spec.student]
        figures = {SIZE: size, TIMINGS[0]: p50 + seed / 2, TIMINGS[1]: 2 * p50, TIMINGS[2]: 1000 / p50}
        figures |= {SIZE + INT8: size8, TIMINGS[0] + INT8: p50_8 + seed / 2, TIMINGS[1] + INT8: 2 * p50_8,
                    TIMINGS[2] + INT8: 1000 / p50_8, THREADS: 1.0,
                    "test_accuracy" + INT8: float((said == LABELS).mean())}
        store.client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in figures.items()])
        if spec != META:  # MetaDistil's runs were logged before the int8 predictions were
            csv = store.root / "int8" / run.info.run_id / Path(INT8_PREDICTIONS_ARTIFACT).name
            csv.parent.mkdir(parents=True)
            pd.DataFrame({"index": np.arange(N_TEST), "label": LABELS, "prediction": said,
                          "prob_positive": 0.5}).to_csv(csv, index=False)
            store.client.log_artifact(run.info.run_id, str(csv), str(Path(INT8_PREDICTIONS_ARTIFACT).parent))
    add_sweep(store, "before_cost", (TEACHER, FINETUNED), (0,), {})
    return store


@pytest.fixture(scope="module")
def report(store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(store.client, "cost_mini", tmp_path_factory.mktemp("cost_out"))


def _row(report: ReportResult, spec: Spec, variant: str) -> pd.Series:
    frame = read_csv(report.out_dir / f"{NAME}.csv")
    return frame[(frame["method"] == LABEL[spec]) & (frame["variant"] == variant)].iloc[0]


def test_int8_is_tested_against_its_own_fp32_model_on_the_same_examples(report):
    """Pooled over seeds 0 and 1: only int8 right = 2 × mended, only fp32 right = 2 × broken."""
    for spec, (broken, mended) in INT8_FLIPS.items():
        if spec == META:
            continue
        row = _row(report, spec, "int8")
        assert (int(row["only_int8_correct"]), int(row["only_fp32_correct"])) == (2 * mended, 2 * broken)
        assert float(row["diff_points"]) == pytest.approx(100 * (mended - broken) / N_TEST)
        assert int(row["n_examples"]) == 2 * N_TEST
        assert float(row["ci_low_points"]) <= float(row["diff_points"]) <= float(row["ci_high_points"])
    assert float(_row(report, TEACHER, "int8")["mean"]) == pytest.approx(
        100 * np.mean([(_int8_predictions(TEACHER, s) == LABELS).mean() for s in (0, 1)]))
    finetuned = markdown_rows(report.out_dir / f"{NAME}.md")  # the last line of a label: int8
    assert finetuned[LABEL[FINETUNED]][1] == "int8" and finetuned[LABEL[FINETUNED]][6] == "4 / 4"
    assert finetuned[LABEL[FINETUNED]][7] == "1.000"  # McNemar: no discordance to speak of


def test_a_run_without_int8_predictions_gets_the_logged_difference_untested(report):
    row = _row(report, META, "int8")
    broken, mended = INT8_FLIPS[META]
    assert float(row["diff_points"]) == pytest.approx(100 * (mended - broken) / N_TEST)
    assert row["p_bootstrap"] == "" and row["only_int8_correct"] == ""
    assert row["note"].startswith("untested: no int8 predictions in run ")


def test_the_cost_figures_are_each_runs_mean_and_spread(report):
    """Seeds 0 and 1 took p50 and p50 + 0.5 ms: mean p50 + 0.25, std 0.5/√2."""
    rows = markdown_rows(report.out_dir / f"{NAME}.md")
    teacher = _row(report, TEACHER, "fp32")
    assert float(teacher[f"{TIMINGS[0]}_mean"]) == pytest.approx(18.25)
    assert float(teacher[f"{TIMINGS[0]}_std"]) == pytest.approx(0.5 / np.sqrt(2))
    assert float(_row(report, KD, "int8")[f"{SIZE}_mean"]) == pytest.approx(51.4)
    assert teacher["threads"] == "1" and teacher["n_measured"] == "2"
    assert rows[LABEL[KD]][8:12] == ["51.4 ± 0.0", "5.25 ± 0.35", "10.00 ± 0.00", "200 ± 0"]


def test_a_configuration_logged_before_the_cost_says_so(report):
    cells = markdown_rows(report.out_dir / f"{NAME}.md")[LABEL[OLD]]
    assert cells[8:12] == [NOT_MEASURED] * 4 and cells[12] == "not recorded"
    assert cells[3] == "no int8 score logged"
    columns = read_csv(report.out_dir / f"{NAME}.csv").columns.tolist()
    assert columns[-3:] == ["n_measured", "threads", "run_ids"]


def test_the_readme_lists_the_pareto_front_and_shows_the_plot(report):
    """Each panel's listed front is exactly the undominated points of the table's means."""
    frame = pd.read_csv(report.out_dir / f"{NAME}.csv").dropna(subset=["mean", f"{SIZE}_mean"])
    readme = (report.out_dir / "README.md").read_text(encoding="utf-8")
    assert f"![Accuracy against latency and size]({plot_file(SST2)})" in readme
    assert (report.out_dir / plot_file(SST2)).read_bytes().startswith(PNG_MAGIC)
    for cost, line in ((TIMINGS[0], "Accuracy against latency p50: "), (SIZE, "Accuracy against size: ")):
        listed = next(text for text in readme.splitlines() if text.startswith(f"- {line}"))
        points = {f"{r.method}, {r.variant}": (r.mean, getattr(r, f"{cost}_mean"))
                  for r in frame.itertuples()}
        front = {name for name, p in points.items() if not any(dominates(q, p) for q in points.values())}
        assert {name for name in points if f" {name} (" in listed} == front, listed
    assert "MiniLM (teacher), fp32" in front  # the best score is on any front
    assert "KD MiniLM→MiniLM@2, fp32" not in front  # MetaDistil's student scores more at the same size


def test_a_sweep_whose_runs_predate_the_cost_gets_a_line_not_a_table(store, tmp_path):
    result = build_report(store.client, "before_cost", tmp_path)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "## Size and speed" in readme
    assert "no accuracy–cost plot: none of this sweep's 2 runs logged" in readme
    assert not (tmp_path / f"{NAME}.md").exists() and not (tmp_path / plot_file(SST2)).exists()
    assert all(COST[0] not in path.name for path in result.files)
