"""Every stored artifact a command needs is checked before it is used: a run's model lost from the
store (predict, the demo), its test predictions (the report), a finished trial's folder that lost
its files (a re-run sweep). Each command answers in one line naming the run, the path and the fix,
exit 2, never a traceback; a re-run sweep trains such a trial again and logs the lost files back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.report import cli as report_cli
from orchestrator.run import stages
from orchestrator.run.stages import run_stages
from orchestrator.serve import demo, predict
from orchestrator.serve.registry import register_best
from tests.orchestrator.planned_sweeps import planned_sweep
from tests.servers import free_ports
from tests.students import save_student
from trainers.record.artifact_files import model_problem, trial_problem
from trainers.record.artifacts import CONFIG_ARTIFACT, PREDICTIONS_ARTIFACT, RESULT_FILE
from trainers.record.model_log import log_model_and_finish
from trainers.record.run_log import log_results

COMMAND = "python -m orchestrator.sweep --space search_spaces/s.yaml"
RUN_NAME = "tinybert__finetune__seed0"
CSV = "index,label,prediction,prob_positive\n0,1,1,0.9\n1,0,0,0.2\n"


def finished_folder(folder: Path, run_id: str = "r") -> Path:
    """A finished trial's folder as the worker writes it (a tiny student)."""
    save_student(folder, labelled=True)
    (folder / Path(PREDICTIONS_ARTIFACT).name).write_text(CSV)
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": [{"val_accuracy": 0.5}],
                                                  "final": {"test_accuracy": 0.5}}))
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A sweep ``s`` with one finished run, its model logged and registered as ``best``, its trial
    folder gone (only the store holds the model); a pristine copy of its artifacts beside it."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="s", tags={"kind": "sweep", "command": COMMAND})
    run_id = client.create_run(experiment, run_name=RUN_NAME, tags={
        "method": "finetune", "student": "tinybert", "seed": "0", "trial_key": "k",
        "mlflow.parentRunId": parent.info.run_id}).info.run_id
    client.log_metric(run_id, "test_accuracy", 0.5)
    client.log_metric(run_id, "val_accuracy", 0.5, step=1)
    folder = finished_folder(tmp_path / "storage" / "k", run_id)
    log_results(client, run_id, folder)
    log_model_and_finish(uri, run_id, folder)
    register_best(client, "s")
    shutil.rmtree(folder)
    model = client.get_logged_model(client.get_run(run_id).outputs.model_outputs[-1].model_id)
    shutil.copytree(tmp_path / "artifacts", tmp_path / "pristine")
    return {"uri": uri, "client": client, "run_id": run_id, "tmp": tmp_path,
            "model": Path(model.artifact_location.removeprefix("file://"))}


@pytest.fixture()
def store(built):
    """The built store with its artifacts as they were logged (each test loses some)."""
    shutil.rmtree(built["tmp"] / "artifacts")
    shutil.copytree(built["tmp"] / "pristine", built["tmp"] / "artifacts")
    return built


def one_line(capsys, code: int) -> str:
    """Exit code 2 and exactly one line on stderr, which is returned."""
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def names_run_path_and_fix(err: str, store: dict, path: Path) -> None:
    assert RUN_NAME in err and store["run_id"] in err and str(path) in err
    assert f"re-run the sweep to rebuild it ({COMMAND})" in err
    assert "point --tracking-uri at the store that has it" in err


@pytest.mark.parametrize("lose, said", [("model", "lacks model/"),
                                        ("model/model.safetensors", "lacks model/model.safetensors"),
                                        ("components/tokenizer", "lacks components/tokenizer/")])
def test_predict_answers_a_registered_model_that_lost_its_files_in_one_line(store, capsys, lose, said):
    """The defect: the registered model's ``model/`` folder gone from the store's artifacts ended
    in transformers' traceback ("Repo id must be in the form…")."""
    target = store["model"] / lose
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    capsys.readouterr()
    err = one_line(capsys, predict.main(["NLP is fun.", "--sweep", "s", "--tracking-uri", store["uri"]]))
    names_run_path_and_fix(err, store, store["model"])
    assert f"registered model {store['model']} {said}; " in err


def test_predict_answers_truncated_weights_in_one_line(store, capsys):
    weights = store["model"] / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    err = one_line(capsys, predict.main(["NLP is fun.", "--sweep", "s", "--tracking-uri", store["uri"]]))
    names_run_path_and_fix(err, store, store["model"])
    assert "model/model.safetensors is truncated" in err


def test_the_demo_refuses_a_lost_model_before_ray_starts(store, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(demo, "serve_demo", refuse)
    shutil.rmtree(store["model"] / "model")
    capsys.readouterr()
    err = one_line(capsys, demo.main(["--port", str(free_ports(1)[0]), "--sweep", "s",
                                      "--tracking-uri", store["uri"]]))
    names_run_path_and_fix(err, store, store["model"])


@pytest.mark.parametrize("text, problem", [(None, "is missing"), ("", "is not a CSV file"),
                                           ("index,label\n0,1\n", "lacks the columns")])
def test_the_report_answers_lost_or_broken_predictions_in_one_line(store, capsys, text, problem):
    csv = store["tmp"] / "artifacts" / store["run_id"] / "artifacts" / PREDICTIONS_ARTIFACT
    csv.unlink() if text is None else csv.write_text(text)
    capsys.readouterr()
    err = one_line(capsys, report_cli.main(["--sweep", "s", "--tracking-uri", store["uri"],
                                            "--report-dir", str(store["tmp"] / "report")]))
    names_run_path_and_fix(err, store, csv)
    assert problem in err


def test_a_trial_folder_is_finished_only_with_every_file_readable(tmp_path):
    folder = finished_folder(tmp_path / "k")
    assert trial_problem(folder) is None and model_problem(folder / "model") is None
    (folder / "model" / "config.json").write_text("{not json")
    assert trial_problem(folder) == "model/: config.json is not valid JSON"
    shutil.rmtree(folder / "model")
    assert trial_problem(folder) == "model/ is missing"
    (folder / RESULT_FILE).write_text('{"run_id": "r"}')
    assert trial_problem(folder) == "result.json lacks final, history"
    (folder / CONFIG_ARTIFACT).unlink()
    (folder / RESULT_FILE).write_text("")
    assert trial_problem(folder) == "result.json is not valid JSON"


def test_a_rerun_sweep_trains_a_trial_that_lost_its_weights_and_logs_lost_files_again(
        tmp_path, monkeypatch, capsys):
    """Storage says finished, but the weights are gone: the re-run says so in one line and trains
    the trial again (the worker replaces the folder). Its MLflow run's lost model files and
    predictions are logged again from the folder, into the same logged model."""
    sweep = planned_sweep(tmp_path)
    spec, layout, plan, trial, client, tracked = (sweep.spec, sweep.layout, sweep.plan, sweep.trial,
                                                  sweep.client, sweep.tracked)
    trained = []

    def tune_stage(name, payloads, *_):
        trained.append(name)
        finished_folder(layout.model_dir(trial.key), payloads[trial.name].run_id)
        return {}, {}

    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    (outcome,) = run_stages(spec, plan, layout, tracked, slots=1)
    assert outcome.status == "trained" and len(trained) == 1

    shutil.rmtree(layout.weights_dir(trial.key))  # storage: result.json says done, no weights
    capsys.readouterr()
    (outcome,) = run_stages(spec, plan, layout, tracked, slots=1)
    said = capsys.readouterr().out
    assert outcome.status == "trained" and len(trained) == 2
    note = [line for line in said.splitlines() if line.startswith("note: ")]
    assert note == [f"note: {trial.name} ({trial.key[:8]}): {layout.model_dir(trial.key)} model/ is "
                    "missing; training it again"]

    run = client.get_run(tracked.existing[trial.key].info.run_id)
    model = Path(client.get_logged_model(run.outputs.model_outputs[-1].model_id)
                 .artifact_location.removeprefix("file://"))
    csv = Path(run.info.artifact_uri.removeprefix("file://")) / PREDICTIONS_ARTIFACT
    shutil.rmtree(model / "model")  # the store: the model's files and the predictions gone
    csv.unlink()
    (outcome,) = run_stages(spec, plan, layout, tracked, slots=1)
    said = capsys.readouterr().out
    assert outcome.status == "reused" and len(trained) == 2
    assert f"note: {trial.name}: its MLflow run {run.info.run_id} had lost its test predictions" in said
    assert model_problem(model) is None and csv.read_text() == CSV
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and len(run.outputs.model_outputs) == 1  # the same model
