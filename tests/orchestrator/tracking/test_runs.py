"""The driver's MLflow bookkeeping on a real SQLite store: no duplicate runs, orphans mended,
finished trials adopted from their folders, secrets never shown."""

from __future__ import annotations

import json

import mlflow
import mlflow.transformers
import pytest
from mlflow.tracking import MlflowClient

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.spec.space import parse_spec
from orchestrator.tracking import runs
from orchestrator.tracking.store import TrackingError, check_store
from tests.conftest import SST2
from tests.students import save_student
from trainers.config import DataConfig
from trainers.data.glue import load_splits
from trainers.record.artifacts import CONFIG_ARTIFACT, RESULT_FILE
from trainers.record.layout import StorageLayout
from trainers.record.model_log import log_model_and_finish
from trainers.record.run_log import split_inputs


@pytest.fixture()
def setup(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = parse_spec({"name": "s", "seeds": [0], "grid": [
        {"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}]}, "x.yaml")
    plan = build_plan(spec, data_fingerprint="f", storage=tmp_path / "store",
                      models=resolve_models(spec, tmp_path / "x.yaml"))
    experiment = runs.ensure_experiment(client, "s", tmp_path / "artifacts")
    parent = runs.ensure_parent_run(client, experiment, "s", {"space": "x"})
    return client, plan, experiment, parent, tmp_path


def test_one_run_per_trial_across_re_runs(setup):
    client, plan, experiment, parent, _ = setup
    trial = plan.trials[0]
    first = runs.ensure_trial_run(client, experiment, parent, "s", trial, runs.trial_runs(client, experiment))
    again = runs.ensure_trial_run(client, experiment, parent, "s", trial, runs.trial_runs(client, experiment))
    assert first == again
    assert runs.ensure_parent_run(client, experiment, "s", {}) == parent
    assert len(client.search_runs([experiment], "tags.trial_key != ''")) == 1
    run = client.get_run(first)
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.params["method"] == "finetune"
    assert not any("teacher_dirs" in k for k in run.data.params)
    assert not any("://" in v for v in run.data.params.values())  # no URI (nor its secrets) as a param


def test_the_experiment_opens_on_its_runs_in_the_ui(setup):
    """MLflow 3's UI opens an experiment without a kind on the GenAI overview, an empty page here;
    an experiment made before the mark gets it on the next sweep."""
    client, _, experiment, _, tmp_path = setup
    assert client.get_experiment(experiment).tags["mlflow.experimentKind"] == "custom_model_development"
    older = client.create_experiment("older")
    assert runs.ensure_experiment(client, "older", tmp_path) == older
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"


def test_orphans_not_in_the_plan_are_marked_failed(setup):
    client, plan, experiment, parent, _ = setup
    existing = runs.trial_runs(client, experiment)
    ids = [runs.ensure_trial_run(client, experiment, parent, "s", t, existing) for t in plan.trials]
    assert runs.fail_orphans(client, experiment, {plan.trials[0].key}) == 1
    assert client.get_run(ids[0]).info.status == "RUNNING"
    assert client.get_run(ids[1]).info.status == "FAILED"


def test_finished_trial_is_adopted_from_its_folder(setup):
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    folder = layout.model_dir(trial.key)
    folder.mkdir(parents=True)
    save_student(folder)
    (folder / CONFIG_ARTIFACT).write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    history = [{"val_accuracy": 0.6, "train_loss": 0.7}, {"val_accuracy": 0.7, "train_loss": 0.5}]
    environment = {"env.cpu": "AMD EPYC", "env.cpu_capability": "AVX2"}  # as its worker recorded it
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": "elsewhere", "history": history,
                                                  "final": {"test_accuracy": 0.71},
                                                  "environment": environment}))
    run_id = runs.adopt_finished(client, experiment, parent, "s", trial, layout,
                                 runs.trial_runs(client, experiment))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["reused_from"] == "elsewhere"
    assert {k: v for k, v in run.data.tags.items() if k.startswith("env.")} == environment
    assert run.data.metrics["test_accuracy"] == 0.71
    history = client.get_metric_history(run_id, "val_accuracy")
    assert [m.value for m in history] == [0.6, 0.7]
    assert all(m.timestamp > 1_700_000_000_000 for m in history)  # not 1970 on the UI's time axes
    assert {a.path for a in client.list_artifacts(run_id)} == {"config.json", "predictions"}
    model_id = run.outputs.model_outputs[0].model_id  # the student, as an MLflow model
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert model.metadata.flavors["transformers"]["task"] == "text-classification"
    assert model.predict(["NLP is fun."])["label"][0] in ("negative", "positive")


def test_a_trial_reused_from_another_sweep_shows_the_splits_it_trained_on(setup):
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    other = runs.ensure_experiment(client, "other", tmp_path / "artifacts")
    trained = client.create_run(other).info.run_id
    splits = load_splits(DataConfig(source=str(SST2), train_size=50, quiz_size=10, test_size=20))
    client.log_inputs(trained, datasets=split_inputs(splits, str(SST2)))
    folder = layout.model_dir(trial.key)
    save_student(folder, labelled=True)
    (folder / CONFIG_ARTIFACT).write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n")
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": trained, "history": [], "final": {}}))
    run_id = runs.adopt_finished(client, experiment, parent, "s", trial, layout,
                                 runs.trial_runs(client, experiment))
    run = client.get_run(run_id)
    assert run.data.tags["reused_from"] == trained
    assert sorted(i.tags[0].value for i in run.inputs.dataset_inputs) == ["quiz", "test", "train",
                                                                         "validation"]
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {splits.fingerprint}
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40  # the project's checkout


def test_a_folder_whose_worker_died_before_closing_its_run_finishes_that_run(setup):
    """ASHA stops a trial at epoch 2 of 3; its worker trains epoch 3, writes its folder and is
    killed before it ends its run: the driver's view of the run (RUNNING, from when it opened it)
    is stale, and the folder closes the run rather than leaving it to be marked FAILED."""
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    existing = runs.trial_runs(client, experiment)
    run_id = runs.ensure_trial_run(client, experiment, parent, "s", trial, existing)
    client.log_metric(run_id, "val_accuracy", 0.6, step=1)  # what the worker logged before dying
    folder = layout.model_dir(trial.key)
    folder.mkdir(parents=True)
    save_student(folder)
    (folder / CONFIG_ARTIFACT).write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    history = [{"val_accuracy": 0.6}, {"val_accuracy": 0.7}]
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": history,
                                                  "final": {"test_accuracy": 0.71}}))
    assert runs.adopt_finished(client, experiment, parent, "s", trial, layout, existing) == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "reused_from" not in run.data.tags
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_accuracy")) == [
        (1, 0.6), (2, 0.7)]


def test_a_run_its_worker_finished_is_left_as_it_is(setup):
    """The usual end: the worker logged the final metrics and ended its run; the driver's view of
    the run is still the RUNNING one it opened, and adopting the folder adds nothing to it."""
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    existing = runs.trial_runs(client, experiment)
    run_id = runs.ensure_trial_run(client, experiment, parent, "s", trial, existing)
    client.log_metric(run_id, "test_accuracy", 0.71)
    folder = layout.model_dir(trial.key)
    save_student(folder, labelled=True)
    log_model_and_finish(client.tracking_uri, run_id, folder)
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": [],
                                                  "final": {"test_accuracy": 0.71}}))
    assert runs.adopt_finished(client, experiment, parent, "s", trial, layout, existing) == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and len(run.outputs.model_outputs) == 1
    assert len(client.get_metric_history(run_id, "test_accuracy")) == 1
    assert client.list_artifacts(run_id) == []


def test_a_finished_run_logged_before_models_were_gets_its_model(setup):
    """A store from before runs held their model: a re-run of the sweep logs each finished
    trial's model from its folder, with the class names its older config lacks."""
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    existing = runs.trial_runs(client, experiment)
    run_id = runs.ensure_trial_run(client, experiment, parent, "s", trial, existing)
    client.set_terminated(run_id, "FINISHED")
    folder = layout.model_dir(trial.key)
    save_student(folder)
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": [], "final": {}}))
    runs.adopt_finished(client, experiment, parent, "s", trial, layout, existing)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and len(run.outputs.model_outputs) == 1
    model = mlflow.transformers.load_model(f"models:/{run.outputs.model_outputs[0].model_id}",
                                           return_type="components")["model"]
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_a_finished_run_closed_before_workers_tagged_their_folder_gets_the_tag(setup):
    """A run its worker closed before workers tagged ``model_dir``: a re-run of the sweep tags it,
    so predict and the demo find the trial's folder (and its int8 variant's file) again."""
    client, plan, experiment, parent, tmp_path = setup
    trial = plan.trials[0]
    layout = StorageLayout(tmp_path / "store")
    existing = runs.trial_runs(client, experiment)
    run_id = runs.ensure_trial_run(client, experiment, parent, "s", trial, existing)
    folder = layout.model_dir(trial.key)
    save_student(folder, labelled=True)
    log_model_and_finish(client.tracking_uri, run_id, folder)
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": [], "final": {}}))
    assert "model_dir" not in client.get_run(run_id).data.tags
    runs.adopt_finished(client, experiment, parent, "s", trial, layout, existing)
    assert client.get_run(run_id).data.tags["model_dir"] == str(folder)


def test_unsupported_scheme_and_unwritable_sqlite(tmp_path):
    with pytest.raises(TrackingError, match="unsupported scheme 'ftp'"):
        check_store("ftp://host/x", create=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TrackingError, match="cannot open the SQLite store"):
        check_store(f"sqlite:///{blocker}/sub/mlflow.db", create=True)
