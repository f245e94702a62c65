"""A finished trial's student as an MLflow model, with no server (a SQLite store in tmp_path): the
transformers flavor with its task, signature and pinned requirements, class names of the trial's
task, the run ended FINISHED; logging a run that holds a model already logs nothing again."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from transformers import BertConfig

from tests.students import save_student
from trainers.record import model_log
from trainers.record.artifacts import CONFIG_ARTIFACT


def test_class_names_go_into_the_config_both_ways():
    config = BertConfig()
    model_log.set_labels(config, ("not_equivalent", "equivalent"))
    assert config.id2label == {0: "not_equivalent", 1: "equivalent"}
    assert config.label2id == {"not_equivalent": 0, "equivalent": 1}


def test_requirements_pin_the_installed_versions_and_the_signature_is_a_text_classifiers():
    pinned = dict(line.split("==") for line in model_log.requirements())
    assert set(pinned) == set(model_log.REQUIREMENTS)
    assert pinned["torch"] == importlib.metadata.version("torch")
    signature = model_log.signature().to_dict()
    assert [c["type"] for c in json.loads(signature["inputs"])] == ["string"]
    assert [(c["name"], c["type"]) for c in json.loads(signature["outputs"])] == [("label", "string"),
                                                                                 ("score", "double")]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module (creating its tables costs seconds); a run per test."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("s", artifact_location=(root / "artifacts").as_uri())


@pytest.fixture()
def run(store):
    uri, client, experiment = store
    return uri, client, client.create_run(experiment).info.run_id


def test_the_student_is_logged_as_a_text_classifier_of_its_task_and_the_run_finished(run, tmp_path):
    uri, client, run_id = run
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / CONFIG_ARTIFACT).write_text(json.dumps({"data": {"task": "mrpc"}}))
    save_student(folder)  # saved without class names, as older workers did
    assert not model_log.has_model(client, run_id)
    assert model_log.log_model_and_finish(uri, run_id, folder) > 0
    assert client.get_run(run_id).info.status == "FINISHED" and model_log.has_model(client, run_id)
    (logged,) = client.get_run(run_id).outputs.model_outputs
    model = client.get_logged_model(logged.model_id)
    assert model.name == model_log.MODEL_NAME
    root = Path(model.artifact_location.removeprefix("file://"))
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    assert mlmodel["flavors"]["transformers"]["task"] == model_log.TASK
    config = json.loads((root / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "not_equivalent", "1": "equivalent"}
    requirements = (root / "requirements.txt").read_text().split()
    assert set(model_log.requirements()) <= set(requirements)


def test_a_run_that_holds_a_model_is_only_finished(run, tmp_path):
    uri, client, run_id = run
    save_student(tmp_path / "trial", labelled=True)
    model_log.log_model_and_finish(uri, run_id, tmp_path / "trial")
    client.set_terminated(run_id, "RUNNING")  # a worker that died after logging it
    assert model_log.log_model_and_finish(uri, run_id, tmp_path / "trial") == 0.0
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.get_run(run_id).outputs.model_outputs) == 1
