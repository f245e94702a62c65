"""predict (and the demo, which loads through it) reads a run's student as MLflow logged it: the
transformers flavor, downloaded when the trial's folder is gone, classifying with its class names;
each configuration's model is its best run's by the task's main validation metric (MRPC's F1)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from orchestrator.report import best as choice
from orchestrator.report.reader import GroupKey, SweepData, TrialRun
from orchestrator.serve.predict import LoadedModel, model_folder
from tests.students import save_student
from trainers.record.model_log import log_model_and_finish


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



@pytest.mark.parametrize("task, best", [("mrpc", 1), ("sst2", 0), ("cola", 2)])
def test_a_configurations_best_run_is_by_its_tasks_main_validation_metric(monkeypatch, task, best):
    """Seed 0 validates best by accuracy, seed 1 by F1 (MRPC's main metric), seed 2 by Matthews'
    correlation (CoLA's); a run that logged none of them is never the best."""
    kd = GroupKey("kd", ("bert",), "tinybert")
    scores = {0: (0.9, 0.6, 0.1), 1: (0.7, 0.8, 0.2), 2: (0.6, 0.5, 0.4)}
    runs = [TrialRun(f"run{seed}", f"tinybert_from_bert__kd__seed{seed}", kd, seed, 80.0, 1, 2, "tiny",
                     f"t{seed}", 0, task=task,
                     last=(("val_accuracy", acc), ("val_f1", f1), ("val_matthews", mcc)))
            for seed, (acc, f1, mcc) in scores.items()]
    runs.insert(0, TrialRun("none", "tinybert_from_bert__kd__seed3", kd, 3, 90.0, 1, 2, "tiny", "t3", 0,
                            task=task))
    monkeypatch.setattr(choice, "load_sweep", lambda client, sweep: SweepData(
        sweep, None, {}, None, tuple(runs), (), 0))
    ((label, run),) = choice.best_runs(None, "s")
    assert (label, run.seed) == ("KD BERT→TinyBERT", best)
