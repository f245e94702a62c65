"""The stage loop: how many trials run side by side, a failure in one line, and what it records
of a Tune run (here replaced by what a real one leaves in the storage and in MLflow)."""

from __future__ import annotations

import json

import pytest

from orchestrator.run import stages
from orchestrator.run.stages import (
    concurrency,
    error_line,
    main_column,
    run_stages,
    trial_resources,
)
from orchestrator.run.stopped import Stop
from orchestrator.spec.space import SpecError, parse_spec
from tests.orchestrator.planned_sweeps import SPACE, planned_sweep
from tests.students import save_student
from trainers.record.artifacts import CONFIG_ARTIFACT, RESULT_FILE


def _spec(**resources):
    return parse_spec({**SPACE, "resources": resources}, "space.yaml")


@pytest.mark.parametrize("resources, cluster, cap, slots", [
    ({}, {"CPU": 2}, None, 2),
    ({"cpus_per_worker": 2}, {"CPU": 2}, None, 1),
    ({"workers_per_trial": 2}, {"CPU": 16}, None, 8),
    ({"max_concurrent": 3}, {"CPU": 16}, None, 3),
    ({}, {"CPU": 16}, 4, 4),
    ({"gpus_per_worker": 1}, {"CPU": 16, "GPU": 2}, None, 2),
    ({"gpus_per_worker": 0.5}, {"CPU": 16, "GPU": 1}, None, 2),
    ({"cpus_per_worker": 4}, {"CPU": 2}, None, 1),  # never 0: Tune needs one slot to run at all
])
def test_concurrency_is_what_the_cluster_fits_under_every_cap(resources, cluster, cap, slots):
    assert concurrency(_spec(**resources), cluster, cap) == slots


def test_the_searchs_max_concurrent_is_one_more_cap():
    search = {"algorithm": "random", "num_samples": 4, "max_concurrent": 2}
    spec = parse_spec({**SPACE, "train": {"lr": {"loguniform": [1e-5, 1e-3]}}, "search": search,
                       "resources": {"max_concurrent": 3}}, "space.yaml")
    assert concurrency(spec, {"CPU": 16}, None) == 2 and concurrency(spec, {"CPU": 16}, 1) == 1


def test_the_payloads_resources_are_the_spaces():
    res = trial_resources(_spec(workers_per_trial=2, cpus_per_worker=3.5, max_failures=0))
    assert (res.workers, res.cpus_per_worker, res.gpus_per_worker, res.max_failures) == (2, 3.5, 0.0, 0)
    assert res.threads == 3


def test_the_kernel_setting_is_the_spaces_native_unless_pinned():
    assert trial_resources(_spec()).kernels == "native"
    assert trial_resources(_spec(kernels="portable")).kernels == "portable"
    with pytest.raises(SpecError, match="resources.kernels"):
        _spec(kernels="avx2")


def test_the_progress_and_summary_columns_are_the_tasks_main_metric():
    assert main_column("sst2", "val") == ("val_accuracy", "val acc")  # as they always were
    assert main_column("mrpc", "val") == ("val_f1", "val f1")
    assert main_column("mrpc", "test") == ("test_f1", "test f1")
    assert main_column("cola", "val") == ("val_matthews", "val mcc")


def test_a_workers_error_is_one_line_without_the_traceback():
    wrapped = RuntimeError("\x1b[36mray::_RayTrainWorker__execute()\x1b[39m\n"
                           "Traceback (most recent call last):\n"
                           '  File "trainers/engine/loop.py", line 3, in run\n    ^^^^^\n'
                           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert error_line(wrapped) == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert error_line(RuntimeError("")) == "RuntimeError"
    assert len(error_line(RuntimeError("x" * 1000))) == 240


def test_a_stopped_trial_whose_worker_wrote_its_folder_before_dying_is_trained_and_finished(
        tmp_path, monkeypatch):
    """Tune stops a trial; its worker outlives the stop long enough to finish its last epoch and
    write its folder, and dies before it ends its MLflow run. The trial is trained, its run
    FINISHED from its folder (not left RUNNING for the sweep's end to mark FAILED), no marker."""
    sweep = planned_sweep(tmp_path)
    spec, layout, plan, trial, client, tracked = (sweep.spec, sweep.layout, sweep.plan, sweep.trial,
                                                  sweep.client, sweep.tracked)

    def tune_stage(name, payloads, *_):
        folder = layout.model_dir(trial.key)
        save_student(folder, labelled=True)
        (folder / CONFIG_ARTIFACT).write_text("{}")
        (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
        (folder / RESULT_FILE).write_text(json.dumps({
            "run_id": payloads[trial.name].run_id, "history": [{"val_accuracy": 0.5}],
            "final": {"test_accuracy": 0.5}}))
        return {}, {trial.name: Stop(epoch=1, metric="val_accuracy")}

    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    (outcome,) = run_stages(spec, plan, layout, tracked, slots=1)
    run = client.get_run(tracked.existing[trial.key].info.run_id)
    assert outcome.status == "trained" and run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == 0.5 and not layout.is_stopped(trial.key)


def test_a_chain_whose_teacher_failed_is_failed_hop_by_hop_naming_the_stage(tmp_path, monkeypatch):
    """MiniLM's fine-tune fails in stage 1: its assistant (stage 2) is never started, and the
    chain's last hop (stage 3) names the assistant, which failed in stage 2; nothing trains."""
    chain = {"methods": ["kd"], "teachers": [["minilm"]], "students": ["minilm@1"],
             "assistants": [["minilm@2"]]}
    sweep = planned_sweep(tmp_path, {"name": "t", "seeds": [0], "grid": [chain]})
    started = []

    def tune_stage(name, payloads, *_):
        started.extend(payloads)
        return {trial: "it crashed" for trial in payloads}, {}

    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    outcomes = {o.trial.name: o for o in run_stages(sweep.spec, sweep.plan, sweep.layout, sweep.tracked,
                                                    slots=1)}
    assert started == ["minilm__finetune__seed0"]
    assert {name: (o.status, o.error) for name, o in outcomes.items()} == {
        "minilm__finetune__seed0": ("failed", "it crashed"),
        "minilm@2_from_minilm__kd__seed0":
            ("failed", "its teacher minilm__finetune__seed0 failed in stage 1"),
        "minilm@1_from_minilm_via_minilm@2__kd__seed0":
            ("failed", "its teacher minilm@2_from_minilm__kd__seed0 failed in stage 2")}


COHORT = {"name": "t", "seeds": [0], "grid": [{"methods": ["mutual"], "students": ["tinybert"],
                                               "peers": [["tinybert", "tinybert"]]}]}


def _write_folder(layout, key, run_id):
    folder = layout.model_dir(key)
    save_student(folder, labelled=True)
    (folder / CONFIG_ARTIFACT).write_text("{}")
    (folder / "test_predictions.csv").write_text("index,label,prediction,prob_positive\n0,1,1,0.9\n")
    (folder / RESULT_FILE).write_text(json.dumps({"run_id": run_id, "history": [{"val_accuracy": 0.5}],
                                                  "final": {"test_accuracy": 0.5}}))


def test_a_cohort_is_one_tune_trial_that_writes_every_members_folder(tmp_path, monkeypatch):
    """Tune runs the first member's trial alone; its payload names the others (their keys and
    MLflow runs, in order), whose folders it writes: each member ends a FINISHED run of its own."""
    sweep = planned_sweep(tmp_path, COHORT)
    first, *others = sweep.plan.trials
    seen = {}

    def tune_stage(name, payloads, *_):
        seen.update(payloads)
        payload = payloads[first.name]
        for peer in payload.peers:
            _write_folder(sweep.layout, peer.key, peer.run_id)
        _write_folder(sweep.layout, first.key, payload.run_id)
        return {}, {}

    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    outcomes = run_stages(sweep.spec, sweep.plan, sweep.layout, sweep.tracked, slots=2)
    assert list(seen) == [first.name]
    assert [p.key for p in seen[first.name].peers] == [t.key for t in others]
    assert [p.config.member for p in seen[first.name].peers] == [1, 2]
    assert [o.status for o in outcomes] == ["trained"] * 3
    run_ids = {sweep.tracked.existing[t.key].info.run_id for t in sweep.plan.trials}
    assert run_ids == {seen[first.name].run_id, *(p.run_id for p in seen[first.name].peers)}
    for trial in sweep.plan.trials:
        run = sweep.client.get_run(sweep.tracked.existing[trial.key].info.run_id)
        assert run.info.status == "FINISHED" and run.data.tags["member"] == str(trial.config.member + 1)


def test_a_failed_cohort_fails_every_member_naming_its_trial_and_a_lost_member_retrains_it(
        tmp_path, monkeypatch):
    sweep = planned_sweep(tmp_path, COHORT)
    first, second, third = sweep.plan.trials
    monkeypatch.setattr(stages, "tune_stage", lambda name, payloads, *_: ({first.name: "it crashed"}, {}))
    outcomes = {o.trial.name: o for o in run_stages(sweep.spec, sweep.plan, sweep.layout, sweep.tracked,
                                                    slots=1)}
    assert outcomes[first.name].error == "it crashed"
    for member in (second, third):
        assert (outcomes[member.name].status, outcomes[member.name].error) == (
            "failed", f"its cohort's trial {first.name} failed: it crashed")

    # Every folder but the third member's: the cohort's trial runs again, for it.
    for trial in (first, second):
        _write_folder(sweep.layout, trial.key, "")
    started = []

    def tune_stage(name, payloads, *_):
        started.extend(payloads)
        for peer in payloads[first.name].peers:
            _write_folder(sweep.layout, peer.key, peer.run_id)
        _write_folder(sweep.layout, first.key, payloads[first.name].run_id)
        return {}, {}

    monkeypatch.setattr(stages, "tune_stage", tune_stage)
    outcomes = {o.trial.name: o.status for o in run_stages(sweep.spec, sweep.plan, sweep.layout,
                                                           sweep.tracked, slots=1)}
    assert started == [first.name]
    assert outcomes == {first.name: "trained", second.name: "reused", third.name: "trained"}
