"""predict (and the demo, which loads through it) reads a run's student as MLflow logged it: the
transformers flavor, downloaded when the trial's folder is gone, classifying with its class names."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import mlflow
from mlflow.tracking import MlflowClient

from orchestrator.predict import LoadedModel, model_folder
from tests.students import save_student
from trainers.model_log import log_model_and_finish


def test_a_run_whose_folder_is_gone_answers_from_its_mlflow_model(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    folder = tmp_path / "store" / "key"
    save_student(folder, labelled=True)
    client.set_tag(run_id, "model_dir", str(folder))
    log_model_and_finish(uri, run_id, folder)
    run = SimpleNamespace(run_id=run_id, run_name="tinybert__finetune__seed0")
    assert model_folder(client, run, tmp_path / "cache") == folder / "model"  # the folder first
    shutil.rmtree(folder)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # predict names its store itself
    downloaded = model_folder(client, run, tmp_path / "cache")
    assert (downloaded / "MLmodel").is_file()
    answer = LoadedModel.load("student", downloaded).classify("NLP is fun.")
    assert answer.prediction in ("negative", "positive") and answer.parameters > 0
