"""Early stopping for real: a random search with ASHA through Ray Tune + Ray Train into MLflow, as a
user runs it, then the same command again. A trial ASHA stops is stopped, not failed: its run is
KILLED and tagged where it stopped, its Ray Train run ended early, the sweep exits 0, and the re-run
trains nothing (a stopped trial stays stopped)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.sweeps import run_sweep, tracking_uri
from trainers.record.checkpoint import STATE
from trainers.record.layout import StorageLayout

pytestmark = pytest.mark.system  # starts Ray: `make test-fast` skips it

EPOCHS = 3
# 3 fine-tune samples of lr in one stage, one at a time so that ASHA has the earlier ones to compare
# with, judged on the training loss. At this size every lr from 1e-6 to 1e-2 leaves the student at
# the majority class, its epoch-1 losses within noise of each other: a coin toss for ASHA. So the
# range reaches lr 1, where a student diverges: search seed 183 draws 3.4e-4, 0.12 and 0.49, whose
# first epochs end at training losses near ln 2 (the majority class), 1.51 and 8.91 (seen through
# this test). The two that diverge trail the median of the samples before them at epoch 1 and are
# stopped there; the first runs all its epochs.
ASHA_SPACE = {
    "name": "asha",
    "seeds": [0],
    "data": {"train_size": 200, "quiz_size": 20, "test_size": 50, "max_length": 32},
    "train": {"epochs": EPOCHS, "lr": {"loguniform": [1.0e-6, 1.0]}, "batch_size": 32},
    "search": {"algorithm": "random", "num_samples": 3, "seed": 183, "metric": "train_loss", "mode": "min",
               "scheduler": "asha", "grace_period": 1, "reduction_factor": 2, "max_concurrent": 1},
    "grid": [{"methods": ["finetune"], "students": ["tinybert"]}],
}


def _checkpoint_epochs(layout: StorageLayout, key: str) -> list[int]:
    """The epochs of the checkpoints the trial's Ray Train run kept (num_to_keep=1: the last, and
    its predecessor if the run ended before deleting it)."""
    return [json.loads(p.read_text())["epoch"] for p in (layout.ray / key).glob(f"checkpoint_*/{STATE}")]


def _written(layout: StorageLayout) -> dict[str, int]:
    """When each finished folder and stopped marker was written."""
    found = [*layout.models.iterdir(), *layout.stopped_file("any").parent.iterdir()]
    return {p.name: p.stat().st_mtime_ns for p in found}


def test_asha_stops_the_diverging_samples_and_a_rerun_keeps_them_stopped(tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(ASHA_SPACE))
    layout = StorageLayout(tmp_path / "store")
    first, _ = run_sweep(tmp_path, "--no-report")
    assert first.returncode == 0, first.stdout[-4000:]
    counts = re.search(r"3 trials: (\d) trained, 0 reused, (\d) stopped early, 0 failed", first.stdout)
    assert counts and int(counts[1]) + int(counts[2]) == 3, first.stdout[-3000:]

    client = MlflowClient(tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name("asha").experiment_id
    trial_runs = client.search_runs([experiment], "tags.trial_key != ''")
    (parent,) = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED" and len(trial_runs) == 3
    stopped = [r for r in trial_runs if r.info.status == "KILLED"]
    assert len(stopped) == int(counts[2])
    assert all(r.info.status == "FINISHED" for r in trial_runs if r not in stopped)
    at = {r.data.tags["sample"]: int(r.data.tags["stopped_at_epoch"]) for r in stopped}
    assert at == {"1": 1, "2": 1}  # lr 0.12 and 0.49; s0 is first
    for run in stopped:
        key, epoch = run.data.tags["trial_key"], int(run.data.tags["stopped_at_epoch"])
        assert epoch < EPOCHS and run.data.tags["stopped_by"] == "asha"
        assert re.search(rf"{re.escape(run.info.run_name)} +stopped ", first.stdout)
        assert json.loads(layout.stopped_file(key).read_text())["epoch"] == epoch
        # Its Train run ended early: no test score, no folder. Its workers die with the Tune trial
        # (its actor owns their controller) shortly after the stop: here, where an epoch takes 0.3 s,
        # one more epoch may be trained, logged or checkpointed meanwhile.
        assert not layout.is_done(key) and "test_accuracy" not in run.data.metrics
        logged = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        checkpointed = _checkpoint_epochs(layout, key)
        assert epoch in logged and max(logged) <= epoch + 1 and max(checkpointed) <= epoch + 1, (
            epoch, logged, checkpointed)
        print(f"{run.info.run_name}: stopped at epoch {epoch}; MLflow holds epochs {logged}, "
              f"Ray Train checkpointed {sorted(checkpointed)}")

    before = _written(layout)
    second, _ = run_sweep(tmp_path, "--no-report")
    assert second.returncode == 0, second.stdout[-4000:]
    kept = len(stopped)
    assert f"stage 1: all 3 trials already done ({kept} stopped early)" in second.stdout
    assert f"3 trials: 0 trained, {3 - kept} reused, {kept} stopped early, 0 failed" in second.stdout
    assert _written(layout) == before
    again = client.search_runs([experiment], "tags.trial_key != ''")
    assert len(again) == 3
    assert {r.info.run_id for r in again if r.info.status == "KILLED"} == {r.info.run_id for r in stopped}
