"""The driver's bookkeeping of trials stopped early, on a real SQLite MLflow store with Tune faked
(``stages.tune_stage`` returns what the scheduler stopped and writes the others' folders): a
stopped trial is recorded stopped (marker, KILLED run, tags), never failed; a re-run adopts it as
stopped; it is trained to its end where the space no longer stops trials or now distils from it."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.run import stages
from orchestrator.run.stages import SweepRuns, run_stages
from orchestrator.run.stopped import Stop, rivals, stays_stopped
from orchestrator.spec.space import parse_spec
from orchestrator.tracking import runs
from tests.students import save_student
from trainers.record.artifacts import CONFIG_ARTIFACT, RESULT_FILE
from trainers.record.layout import StorageLayout

LR = {"loguniform": [1.0e-5, 1.0e-3]}
KD = {"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}
ASHA = {"algorithm": "random", "num_samples": 2, "scheduler": "asha"}


def _space(search=None, grid=None, teacher_train=None):
    return parse_spec({"name": "s", "seeds": [0], "train": {"lr": LR, "epochs": 3},
                       "teacher_train": {"lr": 1e-4} if teacher_train is None else teacher_train,
                       "search": {**ASHA, **(search or {})},
                       "grid": grid or [KD]},
                      "s.yaml")


def _plan(spec, tmp_path):
    return build_plan(spec, data_fingerprint="f", storage=tmp_path / "store",
                      models=resolve_models(spec, tmp_path / "s.yaml"))


def _runs(client, tmp_path, sweep="s") -> SweepRuns:
    experiment = runs.ensure_experiment(client, sweep, tmp_path / "artifacts")
    parent = runs.ensure_parent_run(client, experiment, sweep, {"space": "s"})
    return SweepRuns(client, experiment, parent, sweep, "sqlite://", runs.trial_runs(client, experiment))


def _finish(layout: StorageLayout, payload) -> None:
    """What a finished worker leaves: its folder, ``result.json`` last."""
    folder = layout.model_dir(payload.key)
    save_student(folder, labelled=True)  # the student, which the run's MLflow model is logged from
    (folder / CONFIG_ARTIFACT).write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": payload.run_id, "final": {"test_accuracy": 0.7},
                                                  "history": [{"val_accuracy": 0.7, "train_loss": 0.5}]}))


@pytest.fixture()
def tune(monkeypatch):
    """Tune faked: the trials named in ``tune.stop`` are stopped at epoch 1, the others finish."""
    calls: list[tuple[list[str], list[str]]] = []

    def tune_stage(name, payloads, layout, slots, search, contenders, searcher=None):
        calls.append((sorted(payloads), sorted(contenders)))
        for trial, payload in payloads.items():
            if trial not in fake.stop:
                _finish(layout, payload)
        return {}, {t: Stop(1, search.metric, {"val_accuracy": 0.5, "train_loss": 0.69})
                    for t in payloads if t in fake.stop}

    fake = type("FakeTune", (), {"calls": calls, "stop": set()})()
    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    return fake


def test_rivals_are_the_samples_of_one_configuration_never_a_teacher(tmp_path):
    grid = [{"methods": ["finetune"], "students": ["tinybert"]}, {**KD, "methods": ["kd", "metadistil"]}]
    plan = _plan(_space(grid=grid), tmp_path)
    teachers = {k for t in plan.trials for k in t.teacher_keys}
    found = rivals(plan.trials, teachers)
    assert not any(t.key in teachers for t in plan.trials if t.name in found)
    groups = {}
    for trial in plan.trials:
        if trial.name in found:
            groups.setdefault(found[trial.name].group, []).append(trial.sample)
            assert found[trial.name].epochs == 3
    # the fine-tuned baseline's samples, KD's and MetaDistil's: three groups of two samples each
    assert sorted(groups.values()) == [[0, 1]] * 3
    bert = next(t for t in plan.stages[1] if t.student == "bert")
    assert bert.name not in found and bert.sample is None


def test_a_stopped_trial_is_recorded_stopped_and_stays_stopped(tmp_path, tune):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = _space()
    plan, layout = _plan(spec, tmp_path), StorageLayout(tmp_path / "store")
    loser = plan.stages[2][1]
    tune.stop = {loser.name}
    outcomes = run_stages(spec, plan, layout, _runs(client, tmp_path), slots=1)
    assert {o.trial.name: o.status for o in outcomes}[loser.name] == "stopped"
    assert [o.status for o in outcomes].count("trained") == 2 and not [o for o in outcomes if o.error]
    assert tune.calls[1][1] == sorted(t.name for t in plan.stages[2])  # every sample a contender
    assert tune.calls[0][1] == []  # the teacher is none
    stop = Stop.read(layout, loser.key)
    run = client.get_run(runs.trial_runs(client, client.get_experiment_by_name("s").experiment_id)[loser.key]
                         .info.run_id)
    assert stop.epoch == 1 and stop.run_id == run.info.run_id and not layout.is_done(loser.key)
    assert run.info.status == "KILLED"
    assert run.data.tags["stopped_at_epoch"] == "1" and run.data.tags["stopped_by"] == "asha"
    assert run.data.tags["trial_key"] == loser.key and run.data.tags["sample"] == str(loser.sample)
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5)]

    again = run_stages(spec, plan, layout, _runs(client, tmp_path), slots=1)
    assert len(tune.calls) == 2  # nothing left to train
    assert {o.trial.name: o.status for o in again}[loser.name] == "stopped"
    assert [o.status for o in again].count("reused") == 2
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    assert len(client.search_runs([run.info.experiment_id], "tags.trial_key != ''")) == 3


def test_another_sweep_or_a_driver_that_died_gets_the_stopped_run_from_the_marker(tmp_path, tune):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = _space()
    plan, layout = _plan(spec, tmp_path), StorageLayout(tmp_path / "store")
    trial = plan.stages[2][0]
    stop = Stop(2, "val_accuracy", {"val_accuracy": 0.55, "train_loss": 0.6}, run_id="elsewhere")
    stop.write(layout, trial.key)
    tracked = _runs(client, tmp_path, sweep="other")
    tracked.open(trial)  # left RUNNING, as by a driver killed after writing the marker
    outcomes = run_stages(spec, plan, layout, tracked, slots=1)
    assert {o.trial.name: o.status for o in outcomes}[trial.name] == "stopped"
    assert trial.name not in tune.calls[1][0]
    run = tracked.existing[trial.key]
    assert run.info.status == "KILLED" and run.data.tags["stopped_at_epoch"] == "2"
    assert run.data.tags["reused_from"] == "elsewhere" and run.data.metrics["val_accuracy"] == 0.55


@pytest.mark.parametrize("space", ["without a scheduler", "distilling from it"])
def test_a_stopped_trial_is_trained_to_its_end_where_it_must(tmp_path, tune, space):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    baseline = [{"methods": ["finetune"], "students": ["tinybert"]}]
    plan, layout = _plan(_space(grid=baseline), tmp_path), StorageLayout(tmp_path / "store")
    stopped = plan.stages[1][0]
    tune.stop = {stopped.name}
    run_stages(_space(grid=baseline), plan, layout, _runs(client, tmp_path), slots=1)
    tune.stop = set()
    if space == "without a scheduler":
        spec = _space(grid=baseline, search={"scheduler": "none"})
    else:  # the baseline of sample 0 is now a teacher (teacher_train no longer pins its lr)
        spec = _space(grid=[*baseline, {"methods": ["kd"], "teachers": [["tinybert"]], "students": ["bert"]}],
                      teacher_train={})
    plan = _plan(spec, tmp_path)
    teachers = {k for t in plan.trials for k in t.teacher_keys}
    assert stopped.key in {t.key for t in plan.trials}
    assert not stays_stopped(stopped, layout, spec.search.scheduler, teachers)
    assert space == "without a scheduler" or stopped.key in teachers
    outcomes = run_stages(spec, plan, layout, _runs(client, tmp_path), slots=1)
    assert {o.trial.key: o.status for o in outcomes}[stopped.key] == "trained"
    assert not layout.is_stopped(stopped.key) and layout.is_done(stopped.key)
    run = runs.trial_runs(client, client.get_experiment_by_name("s").experiment_id)[stopped.key]
    assert "stopped_at_epoch" not in run.data.tags and "stopped_by" not in run.data.tags


def test_a_stopped_trial_whose_workers_finished_after_all_is_finished(tmp_path, tune):
    """Its workers outlive Tune's stop a little; one that wrote its folder meanwhile is done."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = _space()
    plan, layout = _plan(spec, tmp_path), StorageLayout(tmp_path / "store")
    late = plan.stages[2][0]
    tune.stop = {late.name}
    run_stages(spec, plan, layout, _runs(client, tmp_path), slots=1)
    run_id = Stop.read(layout, late.key).run_id
    _finish(layout, type("Payload", (), {"key": late.key, "run_id": run_id})())
    outcomes = run_stages(spec, plan, layout, _runs(client, tmp_path), slots=1)
    assert {o.trial.name: o.status for o in outcomes}[late.name] == "reused"
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and not layout.is_stopped(late.key)
    assert "stopped_at_epoch" not in run.data.tags and run.data.metrics["test_accuracy"] == 0.7


def test_a_stop_keeps_every_metric_a_search_may_rank_by_whatever_the_task():
    """An MRPC trial stopped on val_f1 keeps its val_f1 and val_accuracy; SST-2's marker holds what
    it always held."""
    mrpc = {"epoch": 2, "val_f1": 0.8, "val_accuracy": 0.7, "train_loss": 0.5, "epoch_time_s": 3.0}
    assert Stop.from_result(mrpc, "val_f1") == Stop(2, "val_f1", {"val_f1": 0.8, "val_accuracy": 0.7,
                                                                 "train_loss": 0.5})
    sst2 = {"epoch": 1, "train_loss": 0.6, "val_accuracy": 0.5, "samples_per_s": 9.0}
    assert list(Stop.from_result(sst2, "val_accuracy").metrics.items()) == [("val_accuracy", 0.5),
                                                                            ("train_loss", 0.6)]
