"""A checkpoint resumes training exactly: weights, AdamW moments, the learning-rate schedule and
the random generators come back, so the steps after a restore are the steps the uninterrupted
run took; the files are safetensors and JSON, nothing to unpickle."""

from __future__ import annotations

import json

import torch

from trainers.engine import rng
from trainers.engine.update import StudentUpdate
from trainers.record import checkpoint

STEPS, SAVED_AT = 5, 2


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Dropout(0.3),
                               torch.nn.Linear(8, 2))


def _setup(seed: int):
    model = _model(seed)
    update = StudentUpdate(model, lr=1e-2, weight_decay=0.01, total_steps=STEPS, warmup_ratio=0.4)
    return model, update


def _step(model, update, step: int) -> None:
    """One step; its data a function of the step, its dropout mask drawn from torch's generator."""
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(step))
    update.from_loss(torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 1, 0])))


def _save(folder, model, update, state):
    return checkpoint.save(folder, models={"student": model}, optimizers={"student": update.optimizer},
                           schedulers={"student": update.scheduler}, rng=rng.get_state(), state=state)


def test_a_restored_run_takes_the_uninterrupted_runs_steps(tmp_path):
    model, update = _setup(seed=0)
    torch.manual_seed(10)
    for step in range(STEPS):
        if step == SAVED_AT:
            _save(tmp_path / "ckpt", model, update, {"epoch": SAVED_AT, "history": [{"loss": 0.5}]})
            saved_lr = update.optimizer.param_groups[0]["lr"]
        _step(model, update, step)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    resumed, resumed_update = _setup(seed=1)  # other weights, fresh optimizer and schedule
    state, saved_rng = checkpoint.load(tmp_path / "ckpt", models={"student": resumed},
                                       optimizers={"student": resumed_update.optimizer},
                                       schedulers={"student": resumed_update.scheduler})
    assert state["epoch"] == SAVED_AT and state["history"] == [{"loss": 0.5}]
    assert resumed_update.scheduler.last_epoch == SAVED_AT
    assert resumed_update.optimizer.param_groups[0]["lr"] == saved_lr  # mid warm-up
    torch.manual_seed(99)  # whatever the process drew since
    rng.set_state(saved_rng)
    for step in range(SAVED_AT, STEPS):
        _step(resumed, resumed_update, step)
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_the_folder_holds_tensors_and_json_only(tmp_path):
    model, update = _setup(seed=0)
    _step(model, update, 0)
    folder = _save(tmp_path / "ckpt", model, update, {"epoch": 1, "history": []})
    assert sorted(p.name for p in folder.iterdir()) == [checkpoint.STATE, checkpoint.TENSORS]
    assert (folder / checkpoint.TENSORS).read_bytes()[8:9] == b"{"  # safetensors: length, JSON header
    state = json.loads((folder / checkpoint.STATE).read_text())
    assert state["rng_count"] == len(rng.get_state())
    assert {"optimizers", "schedulers", "epoch", "history"} <= set(state)
