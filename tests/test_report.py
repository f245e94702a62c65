"""Report tests on a real MLflow store: SQLite database and file artifact root under tmp_path,
filled through the MLflow API with the tags, metrics and artifacts of orchestrator.tracking."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from orchestrator import paths, report, tracking

N_TEST = 200
LABELS = np.arange(N_TEST) % 2
PARAMS = {"bert": 109_483_778, "roberta": 124_647_170, "distilbert": 66_955_010}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Spec:
    """One configuration; seed s gets the first ``wrong + s`` test examples wrong."""

    method: str
    teachers: tuple[str, ...]
    student: str
    wrong: int
    noise_p: float = 0.0
    warmup_epochs: int = 0


PAPER_SPECS = (
    Spec("finetune", (), "bert", 6),
    Spec("finetune", (), "roberta", 8),
    Spec("finetune", (), "distilbert", 14),
    Spec("kd", ("bert",), "distilbert", 20),
    Spec("metadistil", ("bert",), "distilbert", 10),
    Spec("metadistil", ("bert", "roberta"), "distilbert", 12),
    Spec("metadistil", ("bert",), "distilbert", 16, warmup_epochs=1),
    Spec("metadistil", ("bert", "roberta"), "distilbert", 24, noise_p=0.1),
)
# A sweep that never ran KD, with one seed each.
PARTIAL_SPECS = (
    Spec("finetune", (), "bert", 6),
    Spec("finetune", (), "distilbert", 14),
    Spec("metadistil", ("bert",), "distilbert", 10),
)


@dataclass(frozen=True)
class Store:
    uri: str
    client: MlflowClient
    root: Path


@pytest.fixture(scope="module")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow database to copy: migrations cost seconds, a copy nothing."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def make_store(root: Path, empty_database: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_database, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return Store(uri, MlflowClient(tracking_uri=uri), root)


def add_sweep(store: Store, sweep: str, specs: tuple[Spec, ...], seeds: tuple[int, ...],
              parent_tags: dict[str, str]) -> str:
    """An experiment named after the sweep, a parent run, one FINISHED child run per trial."""
    experiment_id = store.client.create_experiment(
        sweep, artifact_location=(store.root / "artifacts" / sweep).as_uri())
    tags = {"kind": tracking.SWEEP_RUN_KIND, "sweep": sweep, **parent_tags}
    parent = store.client.create_run(experiment_id, run_name=sweep, tags=tags)
    for spec in specs:
        for seed in seeds:
            log_trial(store, experiment_id, parent.info.run_id, sweep, spec, seed, "FINISHED")
    store.client.set_terminated(parent.info.run_id)
    return experiment_id


def log_trial(store: Store, experiment_id: str, parent_id: str, sweep: str, spec: Spec,
              seed: int, status: str) -> str:
    client = store.client
    values = {"sweep": sweep, "stage": "1" if spec.method == "finetune" else "2",
              "method": spec.method, "teachers": tracking.teachers_tag(spec.teachers),
              "student": spec.student, "size": "tiny", "noise_p": str(spec.noise_p),
              "warmup_epochs": str(spec.warmup_epochs), "seed": str(seed),
              "trial_key": f"{sweep}-{spec}-{seed}"}
    tags = {key: values[key] for key in tracking.TAG_KEYS} | {"mlflow.parentRunId": parent_id}
    name = tracking.run_name(spec.method, spec.student, spec.teachers, spec.noise_p,
                             spec.warmup_epochs, seed)
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    wrong = spec.wrong + seed
    predictions = LABELS.copy()
    predictions[:wrong] = 1 - predictions[:wrong]
    now = int(time.time() * 1000)
    per_epoch = [Metric(key, value, now, epoch) for epoch in (1, 2, 3) for key, value in
                 (("val_accuracy", 0.6 + 0.1 * epoch - wrong / 1000), ("train_loss", 1 / epoch))]
    final = {"test_accuracy": (N_TEST - wrong) / N_TEST,
             "student_params": PARAMS[spec.student],
             "teacher_params": max((PARAMS[t] for t in spec.teachers), default=0)}
    client.log_batch(run_id, metrics=per_epoch + [Metric(k, v, now, 0) for k, v in final.items()])
    folder = store.root / "staging" / run_id
    folder.mkdir(parents=True)
    csv = folder / Path(tracking.PREDICTIONS_ARTIFACT).name
    pd.DataFrame({"index": np.arange(N_TEST), "label": LABELS, "prediction": predictions,
                  "prob_positive": predictions * 0.8 + 0.1}).to_csv(csv, index=False)
    client.log_artifact(run_id, str(csv), str(Path(tracking.PREDICTIONS_ARTIFACT).parent))
    client.log_dict(run_id, {"method": spec.method, "seed": seed}, tracking.CONFIG_ARTIFACT)
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Store:
    """paper_mini (2 seeds, a failed extra run), cpu_partial (no KD, 1 seed), empty (no runs)."""
    store = make_store(tmp_path_factory.mktemp("mlflow"), empty_database)
    paper_id = add_sweep(store, "paper_mini", PAPER_SPECS, (0, 1),
                         {"space": "search_spaces/paper.yaml", "machine": "2-core CPU test box",
                          "command": "python -m orchestrator.sweep --name paper_mini"})
    log_trial(store, paper_id, "", "paper_mini", PAPER_SPECS[3], 2, "FAILED")
    # The same trial (same trial_key) logged again later: only the later run may count.
    log_trial(store, paper_id, "", "paper_mini", PAPER_SPECS[3], 0, "FINISHED")
    add_sweep(store, "cpu_partial", PARTIAL_SPECS, (0,), {})
    # As orchestrator.sweep tags it: the stem of the space file.
    add_sweep(store, "cpu_on_paper_space", PARTIAL_SPECS[:1], (0,), {"space": "paper"})
    empty_id = store.client.create_experiment("empty")
    store.client.create_run(empty_id, run_name="empty")
    return store


@pytest.fixture(scope="module")
def paper(store: Store, tmp_path_factory: pytest.TempPathFactory) -> report.ReportResult:
    return report.build_report(store.client, "paper_mini", tmp_path_factory.mktemp("paper_out"))


@pytest.fixture(scope="module")
def partial(store: Store, tmp_path_factory: pytest.TempPathFactory) -> report.ReportResult:
    return report.build_report(store.client, "cpu_partial", tmp_path_factory.mktemp("partial_out"))


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def markdown_rows(path: Path) -> dict[str, list[str]]:
    """Method label → cells, for the data rows of a Markdown table file."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| *"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_writes_tables_plots_and_readme(paper: report.ReportResult) -> None:
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
    assert "Times Smaller: parameters of the largest teacher ÷ parameters of the student" in readme
    assert set(paper.files) >= {out / "README.md", out / "runs.csv", out / "table1.tex"}


def test_table1_rows_and_numbers(paper: report.ReportResult) -> None:
    rows = markdown_rows(paper.out_dir / "table1.md")
    # Seeds 0 and 1 get 20 and 21 of 200 wrong: 90.0 and 89.5 → 89.75 ± 0.35.
    kd = rows["KD BERT→DistilBERT"]
    assert kd[1] == "89.75 ± 0.35 (n=2)"
    assert kd[3] == "66,955,010" and kd[4] == "1.6×"          # 109,483,778 / 66,955,010
    assert rows["MetaDistil BERT+RoBERTa→DistilBERT"][4] == "1.9×"  # RoBERTa is the larger
    assert rows["BERT (teacher)"][4] == "–"
    assert rows["DistilBERT (fine-tuned)"][4] == "1.9×"     # the sweep's largest teacher
    # Paper sweep: the original work's number beside each row, rows it owes marked "not run".
    assert rows["BERT (teacher)"][5] == "93.80"
    assert rows["KD BERT→DistilBERT"][5] == "93.10"
    assert rows["TinyBERT (fine-tuned)"][1:3] == ["not run", "not run"]
    assert rows["TinyBERT (fine-tuned)"][5] == "89.95"
    assert paper.table1_markdown in (paper.out_dir / "table1.md").read_text(encoding="utf-8")


def test_tables_2_and_3_pair_variants_with_their_base(paper: report.ReportResult) -> None:
    warm = markdown_rows(paper.out_dir / "table2.md")
    assert warm["MetaDistil BERT→DistilBERT"][1] == "94.75 ± 0.35 (n=2)"
    assert warm["+ warm start (1 epoch)"][1] == "91.75 ± 0.35 (n=2)"
    assert warm["+ warm start (1 epoch)"][5] == "92.45 ‡"
    noise = markdown_rows(paper.out_dir / "table3.md")
    assert noise["MetaDistil BERT+RoBERTa→DistilBERT"][1] == "93.75 ± 0.35 (n=2)"
    assert noise["+ noise p=0.1"][1] == "87.75 ± 0.35 (n=2)"
    assert noise["+ noise p=0.1"][5] == "88.50 ‡"


def test_every_cell_traces_to_run_ids(paper: report.ReportResult, store: Store) -> None:
    experiment = store.client.get_experiment_by_name("paper_mini")
    assert experiment is not None
    failed = {r.info.run_id for r in store.client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FAILED'")}
    assert len(failed) == 1
    for name in ("table1", "table2", "table3"):
        markdown = markdown_rows(paper.out_dir / f"{name}.md")
        for row in read_csv(paper.out_dir / f"{name}.csv").itertuples():
            if row.status == report.NOT_RUN:
                assert row.run_ids == "" and markdown[row.method][-1] == report.NOT_RUN
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


def test_a_trial_logged_twice_counts_once(paper: report.ReportResult, store: Store) -> None:
    experiment = store.client.get_experiment_by_name("paper_mini")
    assert experiment is not None
    name = tracking.run_name("kd", "distilbert", ("bert",), 0.0, 0, 0)
    older, newer = store.client.search_runs([experiment.experiment_id],
                                            f"attributes.run_name = '{name}'",
                                            order_by=["attributes.start_time ASC"])
    used = set(read_csv(paper.out_dir / "runs.csv")["run_id"])
    assert newer.info.run_id in used and older.info.run_id not in used
    assert any(older.info.run_id in warning for warning in paper.warnings)


def test_significance_against_kd(paper: report.ReportResult) -> None:
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


def test_latex_is_booktabs_and_escaped(paper: report.ReportResult) -> None:
    tex = (paper.out_dir / "table1.tex").read_text(encoding="utf-8")
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    body = [line for line in tex.splitlines() if not line.startswith("%")]
    assert not any(ch in line for line in body for ch in "±→×†‡")
    assert r"KD BERT$\rightarrow$DistilBERT & 89.75 $\pm$ 0.35 (n=2)" in tex
    assert all(line.count("%") == line.count(r"\%") for line in body)


def test_paper_space_tag_adds_original_work(store: Store, tmp_path: Path) -> None:
    result = report.build_report(store.client, "cpu_on_paper_space", tmp_path)
    assert "| Original work |" in result.table1_markdown
    # The original work's rows make BERT a teacher here, with 93.80 beside it.
    assert "| BERT (teacher) | 97.00 (n=1) |" in result.table1_markdown
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "- Search space: `paper`" in readme and "sweep run `" in readme


def test_partial_sweep_marks_the_gap(partial: report.ReportResult) -> None:
    rows = markdown_rows(partial.out_dir / "table1.md")
    assert rows["KD BERT→DistilBERT"][1:] == [report.NOT_RUN] * 5
    assert rows["MetaDistil BERT→DistilBERT"][1] == "95.00 (n=1)"
    # One seed: Wilson interval over the 200 test examples, marked †.
    assert rows["MetaDistil BERT→DistilBERT"][2].endswith("†")
    assert "Original work" not in (partial.out_dir / "table1.md").read_text(encoding="utf-8")
    table2 = markdown_rows(partial.out_dir / "table2.md")
    assert table2["no warm-start runs in this sweep"][1] == report.NOT_RUN
    significance = read_csv(partial.out_dir / "significance.csv")
    assert list(significance["note"]) == ["KD baseline not run"]
    for plot in ("accuracy_vs_params.png", "val_accuracy_per_epoch.png"):
        assert (partial.out_dir / "plots" / plot).read_bytes().startswith(PNG_MAGIC)


def test_main_defaults_to_the_only_sweep(tmp_path: Path, empty_database: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    solo = make_store(tmp_path / "solo", empty_database)
    add_sweep(solo, "cpu_solo", PARTIAL_SPECS[:1], (0, 1), {})
    out = tmp_path / "out"
    assert report.main(["--tracking-uri", solo.uri, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    # No distillation in this sweep, so BERT is a fine-tuned student: 6 and 7 of 200 wrong.
    assert str(out) in printed.out and "| BERT (fine-tuned) | 96.75 ± 0.35 (n=2)" in printed.out
    assert (out / "README.md").is_file()


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_sweep_lists_existing(store: Store, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tracking-uri", store.uri, "--sweep", "nope", "--out", str(tmp_path)]
    assert report.main(argv) == 2
    line = one_error_line(capsys)
    assert "'nope'" in line and "paper_mini" in line and "cpu_partial" in line


def test_several_sweeps_need_a_name(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--tracking-uri", store.uri]) == 2
    assert "--sweep" in one_error_line(capsys)


def test_sweep_without_finished_runs(store: Store, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tracking-uri", store.uri, "--sweep", "empty", "--out", str(tmp_path)]
    assert report.main(argv) == 2
    assert "python -m orchestrator.sweep --name empty" in one_error_line(capsys)


def test_unreachable_server_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert report.main(["--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert time.monotonic() - started < report.HEALTH_TIMEOUT_S + 2
    assert "cannot reach" in one_error_line(capsys)


def test_missing_database_is_not_created(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "nowhere.db"
    assert report.main(["--tracking-uri", f"sqlite:///{database}"]) == 2
    assert str(database) in one_error_line(capsys)
    assert not database.exists()


def test_command_line_error_has_no_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "orchestrator.report", "--tracking-uri",
                           "http://127.0.0.1:9"], capture_output=True, text=True,
                          cwd=paths.PROJECT_ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach") and done.stderr.count("\n") == 1
