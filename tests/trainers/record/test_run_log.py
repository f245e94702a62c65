"""A trial's MLflow run as the worker logs it (RunLog): an epoch is logged once, across restarts, and
a finished trial's run carries its config, predictions and model and ends FINISHED."""

from __future__ import annotations

import json
import socket
import time

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.types import DataType

from tests.conftest import MRPC, SST2
from tests.students import save_student
from trainers.config import DataConfig
from trainers.data.glue import load_splits
from trainers.record.run_log import RunLog, log_results, logged_epochs


def new_run(tmp_path) -> tuple[str, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=(tmp_path / "artifacts").as_uri())
    return uri, client, client.create_run(experiment).info.run_id


def test_an_epoch_is_logged_once_across_restarts(tmp_path):
    uri, client, run_id = new_run(tmp_path)
    RunLog(uri, run_id).epoch(1, {"val_accuracy": 0.5, "train_loss": 1.0})
    again = RunLog(uri, run_id)  # a restarted worker, resuming from a checkpoint of epoch 2
    assert again.logged == logged_epochs(client, run_id) == {1}
    again.backfill([{"val_accuracy": 0.9, "train_loss": 9.0}, {"val_accuracy": 0.6, "train_loss": 0.8}])
    again.epoch(2, {"val_accuracy": 0.7, "train_loss": 0.1})
    history = client.get_metric_history(run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.6)]


def test_the_final_log_attaches_the_trials_folder_and_finishes(tmp_path, monkeypatch):
    """The worker's last step: metrics, config and predictions as files, the student as an MLflow
    model (transformers flavor, signature, input example) that pyfunc loads and that names its
    classes; nothing is asked of the network (the hub is unreachable on such machines)."""
    uri, client, run_id = new_run(tmp_path)
    folder = tmp_path / "models" / "key"
    save_student(folder, labelled=True)
    (folder / "config.json").write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    connect = socket.socket.connect

    def local_only(sock, address):
        assert isinstance(address, str) or address[0] in ("127.0.0.1", "::1"), address
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
    RunLog(uri, run_id).final({"test_accuracy": 0.71}, folder)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["test_accuracy"] == 0.71
    assert run.data.tags["model_dir"] == str(folder)  # where predict finds the int8 variant's file
    assert {a.path for a in client.list_artifacts(run_id)} == {"config.json", "predictions"}
    predictions = [a.path for a in client.list_artifacts(run_id, "predictions")]
    assert predictions == ["predictions/test_predictions.csv"]
    [output] = run.outputs.model_outputs
    model = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
    assert model.metadata.signature.inputs.input_types() == [DataType.string]
    assert model.metadata.get_input_schema() is not None and model.input_example is not None
    answer = model.predict(["NLP is fun."])
    assert list(answer.columns) == ["label", "score"] and answer["label"][0] in ("negative", "positive")


def test_the_int8_predictions_are_logged_where_the_folder_has_them(tmp_path):
    """A folder written since int8 predictions exist gives its run both files; one written before
    (the test above) gives the fp32 ones alone."""
    uri, client, run_id = new_run(tmp_path)
    folder = tmp_path / "models" / "key"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    (folder / "test_predictions_int8.csv").write_text("index,label,prediction,prob_positive\n0,1,0,0.4\n")
    log_results(client, run_id, folder)
    predictions = [a.path for a in client.list_artifacts(run_id, "predictions")]
    assert predictions == ["predictions/test_predictions.csv", "predictions/test_predictions_int8.csv"]


def test_the_splits_are_the_runs_dataset_inputs_once(tmp_path):
    uri, client, run_id = new_run(tmp_path)
    splits = load_splits(DataConfig(source=str(SST2), train_size=200, quiz_size=20, test_size=50))
    RunLog(uri, run_id).datasets(splits, str(SST2))
    RunLog(uri, run_id).datasets(splits, str(SST2))  # a restarted worker
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_context = {i.tags[0].value: i.dataset for i in inputs}
    assert sorted(by_context) == ["quiz", "test", "train", "validation"] and len(inputs) == 4
    assert {d.digest for d in by_context.values()} == {splits.fingerprint}
    assert json.loads(by_context["train"].profile)["num_rows"] == 200
    assert by_context["quiz"].name == "sst2-quiz" and "sentence" in by_context["quiz"].schema


def test_a_pair_tasks_splits_are_named_by_the_task_and_hold_both_sentences(tmp_path):
    uri, client, run_id = new_run(tmp_path)
    splits = load_splits(DataConfig(source=str(MRPC), task="mrpc", test_split="labeled", train_size=100,
                                    quiz_size=20))
    RunLog(uri, run_id).datasets(splits, str(MRPC))
    by_context = {i.tags[0].value: i.dataset for i in client.get_run(run_id).inputs.dataset_inputs}
    assert sorted(d.name for d in by_context.values()) == ["mrpc-quiz", "mrpc-test", "mrpc-train",
                                                           "mrpc-validation"]
    schema = json.loads(by_context["train"].schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == ["index", "sentence1", "sentence2", "label"]
    assert json.loads(by_context["test"].profile)["num_rows"] == 1725


def test_system_metrics_are_sampled_until_the_final_log(tmp_path, monkeypatch):
    monkeypatch.setattr("trainers.record.run_log.SYSTEM_METRICS_INTERVAL_S", 0.2)
    uri, client, run_id = new_run(tmp_path)
    folder = tmp_path / "models" / "key"
    save_student(folder, labelled=True)
    (folder / "config.json").write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n")
    run_log = RunLog(uri, run_id)
    run_log.start_system_metrics()
    time.sleep(1.5)
    run_log.final({}, folder)
    metrics = client.get_run(run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    steps = len(client.get_metric_history(run_id, "system/cpu_utilization_percentage"))
    time.sleep(0.5)
    assert len(client.get_metric_history(run_id, "system/cpu_utilization_percentage")) == steps
