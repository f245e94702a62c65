"""The sweep end to end, as a user runs it: a 3-trial space through real Ray Tune + Ray Train into a
real MLflow store (the session's ``swept`` fixture: tests/sweeps.py), then the same command again,
which must train nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.sweeps import run_sweep

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them


def test_runs_tags_metrics_and_artifacts(swept):
    workdir, first = swept.workdir, swept.first
    client = MlflowClient(swept.tracking_uri)
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
        assert {"stage", "method", "teachers", "student", "noise_p", "warmup_epochs", "seed",
                "trial_key"} <= set(tags)
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "predictions"} <= artifacts
        assert len(run.outputs.model_outputs) == 1  # the student as an MLflow model
        assert sorted(i.tags[0].value for i in run.inputs.dataset_inputs) == [
            "quiz", "test", "train", "validation"]
        assert tags["mlflow.user"] and tags["mlflow.source.git.commit"]
    assert {"space", "plan.json", "report"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "registry: 3 configuration(s), alias 'best' set or moved for 3" in first.stdout
    best = client.get_model_version_by_alias("e2e.tinybert__finetune", "best")
    assert best.run_id == next(r.info.run_id for r in runs if r.info.run_name == "tinybert__finetune__seed0")
    distilled = next(r for r in runs if r.data.tags["method"] == "metadistil")
    assert distilled.data.tags["teachers"] == "bert" and distilled.data.tags["noise_p"] == "0.1"
    assert distilled.data.tags["warmup_epochs"] == "1" and distilled.data.tags["stage"] == "2"
    assert "quiz_loss" in distilled.data.metrics
    assert distilled.data.metrics["teacher_params"] > distilled.data.metrics["student_params"]
    predictions = client.download_artifacts(distilled.info.run_id, "predictions/test_predictions.csv",
                                            str(workdir))
    assert len(Path(predictions).read_text().splitlines()) == 101
    assert [a.path for a in client.list_artifacts(distilled.info.run_id, "predictions")] == [
        "predictions/test_predictions.csv", "predictions/test_predictions_int8.csv"]  # int8's, to pair
    assert "3 trials: 3 trained, 0 reused, 0 failed" in first.stdout


def test_report_from_the_real_runs(swept):
    """Every table cell traces to these runs; a method the space lacks (KD) is marked, not fatal."""
    workdir = swept.workdir
    client = MlflowClient(swept.tracking_uri)
    experiment = client.get_experiment_by_name("e2e")
    run_ids = {r.info.run_id for r in client.search_runs([experiment.experiment_id], "tags.trial_key != ''")}
    listed = set((workdir / "report" / "runs.csv").read_text().split())
    assert all(any(run_id in cell for cell in listed) for run_id in run_ids)
    table1 = (workdir / "report" / "table1.md").read_text()
    assert "KD BERT→TinyBERT | not run" in table1
    assert "TinyBERT (fine-tuned) | " in table1 and "(n=1)" in table1
    assert (workdir / "report" / "plots" / "accuracy_vs_params.png").stat().st_size > 10_000
    speed = (workdir / "report" / "size_and_speed.md").read_text()  # each model and its int8 variant
    assert "| TinyBERT (fine-tuned) | int8 | " in speed and "not measured" not in speed
    assert (workdir / "report" / "plots" / "accuracy_vs_cost.png").stat().st_size > 10_000


def test_second_invocation_trains_nothing(swept):
    workdir = swept.workdir
    before = {p.name: (p / "result.json").stat().st_mtime_ns
              for p in (workdir / "store" / "models").iterdir()}
    second, _ = run_sweep(workdir)
    assert second.returncode == 0, second.stdout[-4000:]
    assert "stage 1: all 2 trials already done" in second.stdout
    assert "stage 2: all 1 trials already done" in second.stdout
    assert "3 trials: 0 trained, 3 reused, 0 failed" in second.stdout
    after = {p.name: (p / "result.json").stat().st_mtime_ns for p in (workdir / "store" / "models").iterdir()}
    assert after == before
    client = MlflowClient(swept.tracking_uri)
    experiment = client.get_experiment_by_name("e2e")
    assert len(client.search_runs([experiment.experiment_id], "tags.trial_key != ''")) == 3
    result = json.loads(next((workdir / "store" / "models").iterdir()).joinpath("result.json").read_text())
    assert result["history"] and "test_accuracy" in result["final"]


def test_predict_answers_with_every_model_of_the_sweep(swept, capsys):
    from orchestrator.serve import predict

    where = ["--sweep", "e2e", "--tracking-uri", swept.tracking_uri]
    assert predict.main(["NLP is fun.", *where]) == 0
    out = capsys.readouterr().out
    for label in ("BERT (teacher)", "TinyBERT (fine-tuned)",
                  "MetaDistil BERT→TinyBERT + noise p=0.1 + warm start (1 epoch)"):
        assert label in out
    lines = out.splitlines()
    rows = [line for line in lines if " ms" in line and not line.startswith("  ·")]  # the fp32 models
    assert len(rows) == 3 and all(("positive" in r) != ("negative" in r) for r in rows)
    quantized = [line for line in lines if line.startswith("  · int8")]  # a row under each, answering
    assert len(quantized) == 3 and all(("positive" in r) != ("negative" in r) for r in quantized)
    assert predict.main(["a " * 2000, *where]) == 0
    assert "truncated" in capsys.readouterr().out
    assert predict.main(["   ", *where]) == 2
    assert "the text is empty" in capsys.readouterr().err


def test_a_local_sweep_starts_no_preemption_watcher(swept):
    """Every actor is a Python process of its own, a second and a half of CPU to start here: on the
    Ray the sweep starts itself, Ray Train's watcher for drained cloud nodes is not one of them."""
    assert swept.actors.count("TrainController") == 3 and swept.actors.count("RayTrainWorker") == 3
    assert "PreemptionWatcher" not in swept.actors
