"""The registry on a real SQLite store: each configuration's best run is registered under one
name with the alias ``best``, which moves when a better run lands; the registered model loads by
its alias with ``mlflow.pyfunc`` and classifies a sentence; predict loads it first, and says so
where a store has no registry. The best run is by the task's main validation metric at the last
epoch: MRPC's F1, not its accuracy."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.report.best import best_runs
from orchestrator.serve import predict, registry
from orchestrator.spec.space import parse_spec
from orchestrator.tracking import runs
from tests.students import save_student
from trainers.record.model_log import log_model_and_finish


def _finished_sweep(tmp_path, task: str, validation):
    """A finished two-seed sweep of ``task``: every run has its model; ``validation(seed)`` its
    validation metrics, logged at epochs 1 and 2 (the last one counts)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    spec = parse_spec({"name": "s", "seeds": [0, 1], "data": {"task": task}, "grid": [
        {"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}]}, "x.yaml")
    plan = build_plan(spec, data_fingerprint="f", storage=tmp_path / "store",
                      models=resolve_models(spec, tmp_path / "x.yaml"))
    experiment = runs.ensure_experiment(client, "s", tmp_path / "artifacts")
    parent = runs.ensure_parent_run(client, experiment, "s", {})
    folder = tmp_path / "student"
    save_student(folder, labelled=True)
    existing = runs.trial_runs(client, experiment)
    for trial in plan.trials:
        run_id = runs.ensure_trial_run(client, experiment, parent, "s", trial, existing)
        for key, value in validation(trial.config.seed).items():
            client.log_metric(run_id, key, 0.99 - value, step=1)  # the first epoch ranks the other way
            client.log_metric(run_id, key, value, step=2)
        for key, value in {"test_accuracy": 0.7, "student_params": 10, "teacher_params": 20}.items():
            client.log_metric(run_id, key, value)
        log_model_and_finish(uri, run_id, folder)
    return client, plan, experiment, parent, folder


@pytest.fixture()
def sweep(tmp_path):
    """An SST-2 sweep: seed 1 validates better."""
    return _finished_sweep(tmp_path, "sst2", lambda seed: {"val_accuracy": 0.6 + 0.1 * seed})


def test_each_configuration_has_its_best_run_under_the_alias_best(sweep):
    client, plan, experiment, parent, folder = sweep
    registered = registry.register_best(client, "s")
    kd = next(r for r in registered if r.name == "s.tinybert_from_bert__kd")
    assert len(registered) == len({t.name.rsplit("__seed", 1)[0] for t in plan.trials})
    assert kd.moved and client.get_run(kd.run_id).data.tags["seed"] == "1"
    assert [r.moved for r in registry.register_best(client, "s")] == [False] * len(registered)
    mlflow.set_tracking_uri(client.tracking_uri)
    answer = mlflow.pyfunc.load_model(kd.uri).predict(["NLP is fun."])
    assert answer["label"][0] in ("negative", "positive")
    # A better run of the configuration lands: the alias moves to it, as a new version.
    trial = next(t for t in plan.trials if t.config.method == "kd")
    better = client.create_run(experiment, run_name=trial.name.replace("seed0", "seed2"),
                               tags={**trial.tags, "seed": "2", "trial_key": "other",
                                     "sweep": "s", "mlflow.parentRunId": parent})
    client.log_metric(better.info.run_id, "val_accuracy", 0.95, step=1)
    for key, value in {"test_accuracy": 0.8, "student_params": 10, "teacher_params": 20}.items():
        client.log_metric(better.info.run_id, key, value)
    log_model_and_finish(client.tracking_uri, better.info.run_id, folder)
    moved = next(r for r in registry.register_best(client, "s") if r.name == kd.name)
    assert moved.moved and moved.run_id == better.info.run_id and moved.version == "2"
    assert client.get_model_version_by_alias(kd.name, "best").run_id == better.info.run_id


def test_predict_loads_the_registered_model_and_says_when_there_is_no_registry(sweep, tmp_path,
                                                                                 monkeypatch, capsys):
    client = sweep[0]
    registry.register_best(client, "s")
    chosen = best_runs(client, "s")
    sources = predict.model_sources(client, "s", chosen, tmp_path / "cache")
    assert all((folder / "MLmodel").is_file() for _, folder in sources)
    assert "note" not in capsys.readouterr().err

    def no_registry(*_):
        raise MlflowException("the server has no model registry")

    monkeypatch.setattr(predict, "best_version_uri", no_registry)
    assert len(predict.model_sources(client, "s", chosen, tmp_path / "cache")) == len(sources)
    assert "note: no model registry" in capsys.readouterr().err


def test_an_mrpc_configurations_best_run_is_the_one_with_the_best_validation_f1(tmp_path):
    """MRPC's main metric is F1: seed 0 validates better by F1, seed 1 by accuracy; the alias,
    predict and the demo (through ``best_runs``) take seed 0."""
    client = _finished_sweep(tmp_path, "mrpc", lambda seed: {"val_f1": 0.8 - 0.1 * seed,
                                                            "val_accuracy": 0.6 + 0.1 * seed})[0]
    kd = next(r for r in registry.register_best(client, "s") if r.name == "s.tinybert_from_bert__kd")
    assert client.get_run(kd.run_id).data.tags["seed"] == "0"
    assert client.get_model_version_by_alias(kd.name, "best").run_id == kd.run_id
    chosen = dict(best_runs(client, "s"))
    assert {label: run.seed for label, run in chosen.items()} == {"BERT (teacher)": 0, "KD BERT→TinyBERT": 0}


def test_registering_loads_no_serving_code():
    """The registry reads each configuration's best run from the report's reader, not from predict
    (which loads ``mlflow.transformers`` and the models' code): no import circle."""
    import subprocess
    import sys

    probe = ("import sys, orchestrator.serve.registry; "
             "print(sorted(m for m in ('orchestrator.serve.predict', 'orchestrator.serve.demo', "
             "'mlflow.transformers') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
