"""Faults survived, through real Ray and a real MLflow store, and checked against an uninterrupted run.

One scenario, three invocations of the same command on the e2e space (own storage, own store):

1. a training worker hard-exits once right after reporting epoch 2 (the worker's fault hook); Ray
   Train restarts it from its last registered checkpoint, epoch 1's. (A checkpoint is registered
   when the controller next polls the worker, so one reported a moment before a crash is lost:
   a crash right after epoch 1 restarted the trial from scratch.) When the stage-2 trial has its
   first checkpoint, the driver and its Ray are SIGKILLed, as a lost machine would be;
2. the same command again, interrupted with Ctrl-C (SIGINT to its process group, as a terminal
   sends it) as soon as stage 2 starts;
3. the same command again, left to finish.

The e2e sweep ran the same space once without any fault, so every trial must end with exactly its
metrics: Ray restarts, resumes and re-runs change nothing (determinism through Ray, on CPU).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.sweeps import (
    E2E_SPACE,
    TIMEOUT_S,
    kill_session,
    read_output,
    start_module,
    sweep_args,
    tracking_uri,
)
from trainers.models.cost_names import TIMED

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

# Timing metrics differ between any two runs; everything else must not.
TIMING = {"epoch_time_s", "samples_per_s"}


@dataclass
class Invocation:
    returncode: int
    out: str
    event: float  # when the watched-for moment came (time.time()), 0 if never


def invoke(workdir: Path, until=None, then: signal.Signals | None = None,
           env: dict[str, str] | None = None) -> Invocation:
    """Run the sweep; when ``until(output so far)`` turns true: SIGINT to the driver's process group,
    as a terminal's Ctrl-C; SIGKILL to everything it started, its Ray's workers included, as a lost
    machine. (A SIGKILL to the driver alone leaves its Ray's workers running long enough to finish
    their trial.)"""
    process, ray_tmp = start_module(*sweep_args(workdir, "--no-report"), env=env)
    reader, lines = read_output(process)
    event, deadline = 0.0, time.time() + TIMEOUT_S
    try:
        while process.poll() is None and time.time() < deadline:
            if until is not None and not event and until("".join(lines)):
                event = time.time()
                if then == signal.SIGKILL:
                    kill_session(process.pid, ray_tmp)
                else:
                    os.killpg(process.pid, then)
            time.sleep(0.1)
        process.wait(timeout=max(1.0, deadline - time.time()))
    finally:
        kill_session(process.pid, ray_tmp)
    reader.join(timeout=10)
    return Invocation(process.returncode, "".join(lines), event)


def results(workdir: Path) -> dict[str, dict]:
    """Finished trials by name: their history and final metrics without the timing ones."""
    found = {}
    for path in (workdir / "store" / "models").glob("*/result.json"):
        if ".tmp-" in path.parent.name:  # a trial folder half-written when its worker was killed
            continue
        result = json.loads(path.read_text())
        found[result["name"]] = {
            "history": [{k: v for k, v in row.items() if k not in TIMING} for row in result["history"]],
            "final": result["final"], "mtime": path.stat().st_mtime_ns,
            "epoch_1_s": result["history"][0]["epoch_time_s"]}
    return found


def resumed_from_epoch_1(workdir: Path, name: str) -> bool:
    """A trial that resumed from its epoch-1 checkpoint ends with the epoch-1 metrics that MLflow
    logged before the fault (the checkpoint holds them); retrained from scratch, it would hold the
    timing of a new epoch 1 (MLflow keeps the first value of a step it already has)."""
    (run,) = [r for r in trial_runs(workdir) if r.info.run_name == name]
    client = MlflowClient(tracking_uri(workdir))
    (logged,) = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_time_s") if m.step == 1]
    return results(workdir)[name]["epoch_1_s"] == logged


def trial_runs(workdir: Path) -> list:
    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name(E2E_SPACE["name"])
    return client.search_runs([experiment.experiment_id], "tags.trial_key != ''")


def first_checkpoint_of_stage_2(workdir: Path):
    """True once the stage-2 trial has reported a checkpoint (its epoch 1 is on disk)."""
    def seen(out: str) -> bool:
        if "stage 2: training" not in out:
            return False
        stage_1 = {json.loads(p.read_text())["key"]
                   for p in (workdir / "store" / "models").glob("*/result.json")}
        return any(snapshot.parent.name not in stage_1 for snapshot in
                   (workdir / "store" / "ray").glob("*/checkpoint_manager_snapshot.json"))
    return seen


@pytest.fixture(scope="module")
def faulted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults")
    (workdir / "space.yaml").write_text(yaml.safe_dump(E2E_SPACE))
    marker = workdir / "fault.json"
    crash = {"METADISTIL_FAULT_EPOCH": "2", "METADISTIL_FAULT_MARKER": str(marker)}

    killed = invoke(workdir, until=first_checkpoint_of_stage_2(workdir), then=signal.SIGKILL, env=crash)
    after_kill = {"results": results(workdir), "runs": trial_runs(workdir)}
    interrupted = invoke(workdir, until=lambda out: "stage 2: training" in out, then=signal.SIGINT)
    after_interrupt = {"results": results(workdir), "runs": trial_runs(workdir),
                       "partial": sorted(p.name for p in (workdir / "store" / "models").glob("*.tmp-*"))}
    finished = invoke(workdir)
    return {"workdir": workdir, "marker": json.loads(marker.read_text()), "killed": killed,
            "after_kill": after_kill, "interrupted": interrupted, "after_interrupt": after_interrupt,
            "finished": finished, "final": results(workdir)}


def test_the_faults_really_happened(faulted):
    assert faulted["marker"]["epoch"] == 2
    assert faulted["killed"].event and faulted["killed"].returncode == -signal.SIGKILL
    assert len(faulted["after_kill"]["results"]) == 2, "the driver was killed before stage 2's trial finished"
    assert faulted["interrupted"].event


def test_a_crashed_worker_resumes_and_its_run_stays_one_and_continuous(faulted, swept):
    crashed = faulted["marker"]["trial"]
    runs = [r for r in trial_runs(faulted["workdir"]) if r.info.run_name == crashed]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    client = MlflowClient(tracking_uri(faulted['workdir']))
    for metric in ("val_accuracy", "train_loss"):
        assert sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, metric)) == [1, 2]
    assert resumed_from_epoch_1(faulted["workdir"], crashed)
    assert faulted["final"][crashed]["history"] == results(swept.workdir)[crashed]["history"]


def test_after_a_killed_driver_the_same_command_finishes_without_retraining(faulted):
    killed_runs = {r.info.run_name: r for r in faulted["after_kill"]["runs"]}
    final_runs = {r.info.run_name: r for r in trial_runs(faulted["workdir"])}
    assert len(final_runs) == len(trial_runs(faulted["workdir"])) == 3, "a run was duplicated"
    assert all(r.info.status == "FINISHED" for r in final_runs.values())
    (orphan,) = [r for r in killed_runs.values() if r.info.status == "RUNNING"]  # the killed stage-2 trial
    assert final_runs[orphan.info.run_name].info.run_id == orphan.info.run_id  # resumed, not replaced
    assert resumed_from_epoch_1(faulted["workdir"], orphan.info.run_name)
    assert "stage 1: all 2 trials already done" in faulted["interrupted"].out
    for name, before in faulted["after_kill"]["results"].items():
        assert faulted["final"][name]["mtime"] == before["mtime"], f"{name} was trained again"
    assert "3 trials: 1 trained, 2 reused, 0 failed" in faulted["finished"].out
    assert faulted["finished"].returncode == 0, faulted["finished"].out[-3000:]


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(faulted):
    interrupted = faulted["interrupted"]
    assert interrupted.returncode == 130, interrupted.out[-3000:]
    assert "re-run the same command to resume" in interrupted.out
    assert "Traceback" not in interrupted.out
    assert faulted["after_interrupt"]["partial"] == []
    assert faulted["after_interrupt"]["results"].keys() == faulted["after_kill"]["results"].keys()
    assert not [r for r in faulted["after_interrupt"]["runs"] if r.info.status == "RUNNING"]


def test_every_trial_ends_exactly_as_the_uninterrupted_run(faulted, swept):
    """Determinism through Ray: a worker crash, a killed driver and a Ctrl-C change no metric (but
    the timings of the models' cost, which no two runs share)."""
    reference = results(swept.workdir)
    assert faulted["final"].keys() == reference.keys()

    def untimed(final):
        return {k: v for k, v in final.items() if k not in TIMED}

    for name, result in faulted["final"].items():
        assert result["history"] == reference[name]["history"], name
        assert untimed(result["final"]) == untimed(reference[name]["final"]), name
        assert set(TIMED) <= result["final"].keys(), name


def test_a_teacher_that_keeps_failing_fails_its_students_and_the_sweep_says_where(tmp_path):
    """No retries left (max_failures 0): the stage-1 teacher fails, its stage-2 student is not
    started, exit code 1 lists both with the reason and where the logs are, and MLflow says FAILED."""
    space = {**E2E_SPACE, "name": "failing",
             "grid": [{"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}],
             "resources": {"max_failures": 0}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    crash = {"METADISTIL_FAULT_EPOCH": "1", "METADISTIL_FAULT_MARKER": str(tmp_path / "fault.json")}
    failed = invoke(tmp_path, env=crash)
    assert failed.returncode == 1, failed.out[-3000:]
    assert "2 trials: 0 trained, 0 reused, 2 failed" in failed.out
    assert "stage 2: nothing to train (1 of 1 trials wait on a teacher that failed)" in failed.out
    (line,) = [line for line in failed.out.splitlines() if line.startswith("  bert__finetune__seed0: ")]
    assert "worker process has died" in line and line.endswith("/bert__finetune__seed0/error.txt)")
    assert "tinybert_from_bert__kd__seed0: its teacher bert__finetune__seed0 failed in stage 1" in failed.out
    assert "Traceback" not in failed.out
    client = MlflowClient(tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name("failing")
    runs = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    assert [r.info.status for r in runs] == ["FAILED"]  # the student never got a run
    assert not list((tmp_path / "store" / "models").glob("*/result.json"))
