"""The sweep end to end, as a user runs it: a 3-trial space through real Ray Tune + Ray Train into a
real MLflow store, then the same command again, which must train nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT

SPACE = {
    "name": "e2e",
    "seeds": [0],
    "data": {"train_size": 400, "quiz_size": 20, "test_size": 100, "max_length": 32},
    "train": {"epochs": 2, "lr": 5.0e-4, "teacher_lr": 1.0e-4, "pilot_lr": 5.0e-4, "batch_size": 32},
    "grid": [{"methods": ["finetune"], "students": ["tinybert"]},
             {"methods": ["metadistil"], "teachers": [["bert"]], "students": ["tinybert"],
              "noise_p": [0.1], "warmup_epochs": [1]}],
}
TIMEOUT_S = 600


def run_sweep(workdir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m orchestrator.sweep`` in its own process group, Ray in its own short temp dir."""
    command = [sys.executable, "-m", "orchestrator.sweep", "--space", str(workdir / "space.yaml"),
               "--storage", str(workdir / "store"), "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}",
               "--report-dir", str(workdir / "report"), *extra]
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    full_env = {**os.environ, "RAY_TMPDIR": ray_tmp, "HF_HUB_OFFLINE": "1", **(env or {})}
    process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        # Whatever Ray left behind is found by its own temp dir: `ray stop` would also stop
        # clusters that are not the test's.
        subprocess.run(["pkill", "-9", "-f", ray_tmp], capture_output=True)
    return subprocess.CompletedProcess(command, process.returncode, out, "")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "space.yaml").write_text(yaml.safe_dump(SPACE))
    first = run_sweep(workdir)
    assert first.returncode == 0, first.stdout[-4000:]
    return workdir, first


def test_runs_tags_metrics_and_artifacts(swept):
    workdir, first = swept
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("e2e")
    runs = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    names = sorted(r.info.run_name for r in runs)
    assert names == ["bert__finetune__seed0", "tinybert__finetune__seed0",
                     "tinybert_from_bert__metadistil__noise0.1__warm1__seed0"]
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED"
    for run in runs:
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id and tags["sweep"] == "e2e"
        assert {"stage", "method", "teachers", "student", "noise_p", "warmup_epochs", "seed", "trial_key"} <= set(tags)
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "model", "predictions"} <= artifacts
    distilled = next(r for r in runs if r.data.tags["method"] == "metadistil")
    assert distilled.data.tags["teachers"] == "bert" and distilled.data.tags["noise_p"] == "0.1"
    assert distilled.data.tags["warmup_epochs"] == "1" and distilled.data.tags["stage"] == "2"
    assert "quiz_loss" in distilled.data.metrics
    assert distilled.data.metrics["teacher_params"] > distilled.data.metrics["student_params"]
    predictions = client.download_artifacts(distilled.info.run_id, "predictions/test_predictions.csv",
                                            str(workdir))
    assert len(Path(predictions).read_text().splitlines()) == 101
    assert "3 trials: 3 trained, 0 reused, 0 failed" in first.stdout


def test_report_from_the_real_runs(swept):
    """Every table cell traces to these runs; a method the space lacks (KD) is marked, not fatal."""
    workdir, _ = swept
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("e2e")
    run_ids = {r.info.run_id for r in client.search_runs([experiment.experiment_id], "tags.trial_key != ''")}
    listed = set((workdir / "report" / "runs.csv").read_text().split())
    assert all(any(run_id in cell for cell in listed) for run_id in run_ids)
    table1 = (workdir / "report" / "table1.md").read_text()
    assert "KD BERT→TinyBERT | not run" in table1
    assert "TinyBERT (fine-tuned) | " in table1 and "(n=1)" in table1
    assert (workdir / "report" / "plots" / "accuracy_vs_params.png").stat().st_size > 10_000


def test_second_invocation_trains_nothing(swept):
    workdir, _ = swept
    before = {p.name: (p / "result.json").stat().st_mtime_ns for p in (workdir / "store" / "models").iterdir()}
    second = run_sweep(workdir)
    assert second.returncode == 0, second.stdout[-4000:]
    assert "stage 1: all 2 trials already done" in second.stdout
    assert "stage 2: all 1 trials already done" in second.stdout
    assert "3 trials: 0 trained, 3 reused, 0 failed" in second.stdout
    after = {p.name: (p / "result.json").stat().st_mtime_ns for p in (workdir / "store" / "models").iterdir()}
    assert after == before
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("e2e")
    assert len(client.search_runs([experiment.experiment_id], "tags.trial_key != ''")) == 3
    result = json.loads(next((workdir / "store" / "models").iterdir()).joinpath("result.json").read_text())
    assert result["history"] and "test_accuracy" in result["final"]


def test_predict_answers_with_every_model_of_the_sweep(swept, capsys):
    from orchestrator import predict

    workdir, _ = swept
    where = ["--sweep", "e2e", "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"]
    assert predict.main(["NLP is fun.", *where]) == 0
    out = capsys.readouterr().out
    for label in ("BERT (teacher)", "TinyBERT (fine-tuned)",
                  "MetaDistil BERT→TinyBERT + noise p=0.1 + warm start (1 epoch)"):
        assert label in out
    rows = [line for line in out.splitlines() if " ms" in line]
    assert len(rows) == 3 and all(("positive" in r) != ("negative" in r) for r in rows)
    assert predict.main(["a " * 2000, *where]) == 0
    assert "truncated" in capsys.readouterr().out
    assert predict.main(["   ", *where]) == 2
    assert "the text is empty" in capsys.readouterr().err
