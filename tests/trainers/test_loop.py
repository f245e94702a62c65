"""Each loop on a real SST-2 slice, on CPU, without Ray: every architecture as student and as
teacher; the loss falls and validation accuracy beats the majority class. Plus exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SST2
from trainers.config import DataConfig, TrainConfig
from trainers.loop import Trial, run

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

DATA = DataConfig(source=str(SST2), train_size=1500, quiz_size=50, test_size=300, max_length=48)
FAST = {"epochs": 3, "lr": 1e-3, "teacher_lr": 1e-6, "pilot_lr": 1e-3, "batch_size": 32}
MAJORITY = 444 / 872  # GLUE dev is 50.9 % positive


def _train(cfg: TrainConfig, cache: Path, scratch: Path, resume: Path | None = None):
    trial = Trial.build(cfg, cache_dir=cache, device=torch.device("cpu"))
    kept: dict[int, Path] = {}

    def keep(epoch: int, metrics: dict, folder: Path) -> None:
        kept[epoch] = scratch / f"kept-{epoch}"
        shutil.copytree(folder, kept[epoch], dirs_exist_ok=True)

    return run(trial, report=keep, scratch_dir=scratch, resume_from=resume), kept, trial


def _learning(history: list[dict]) -> list[dict]:
    """The metrics that training determines (timings vary from run to run)."""
    return [{k: v for k, v in epoch.items() if k not in ("epoch_time_s", "samples_per_s")}
            for epoch in history]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, cache_dir):
    """Every architecture fine-tuned once; saved as stage-1 checkpoints are."""
    folders = {}
    for name in ("bert", "roberta", "distilbert", "tinybert"):
        result, _, _ = _train(TrainConfig(method="finetune", student=name, data=DATA, **FAST),
                              cache_dir, tmp_path_factory.mktemp(name))
        folder = tmp_path_factory.mktemp(f"{name}-model")
        result.student.model.save_pretrained(folder)
        result.student.tokenizer.save_pretrained(folder)
        folders[name] = (str(folder), result)
    return folders


@pytest.mark.parametrize("name", ["bert", "roberta", "distilbert", "tinybert"])
def test_finetune_learns(teachers, name):
    _, result = teachers[name]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_accuracy"] > MAJORITY + 0.05


@pytest.mark.parametrize("method, student, teacher_names", [
    ("kd", "distilbert", ("roberta",)),
    ("kd", "tinybert", ("bert",)),
    ("metadistil", "bert", ("distilbert",)),
    ("metadistil", "roberta", ("tinybert",)),
    ("metadistil", "tinybert", ("bert", "roberta")),
])
def test_distillation_learns(teachers, tmp_path, cache_dir, method, student, teacher_names):
    cfg = TrainConfig(method=method, student=student, data=DATA, teachers=teacher_names,
                      teacher_dirs=tuple(teachers[t][0] for t in teacher_names), **FAST)
    result, _, _ = _train(cfg, cache_dir, tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_accuracy"] > MAJORITY + 0.05
    if method == "metadistil":
        assert all(np.isfinite(h["quiz_loss"]) for h in result.history)


def test_resume_mid_trial_gives_the_same_result(teachers, tmp_path, cache_dir):
    """Three epochs straight vs. one epoch, a fresh process state, and a resume from that
    checkpoint: the final metrics and the per-example predictions are identical."""
    cfg = TrainConfig(method="metadistil", student="tinybert", data=DATA, teachers=("bert",),
                      teacher_dirs=(teachers["bert"][0],), noise_p=0.1, warmup_epochs=1,
                      **{**FAST, "epochs": 3})
    straight, kept, _ = _train(cfg, cache_dir, tmp_path / "a")
    torch.manual_seed(12345)  # scramble the global RNG: the checkpoint must restore it
    resumed, _, _ = _train(cfg, cache_dir, tmp_path / "b", resume=kept[1])
    assert _learning(resumed.history) == _learning(straight.history)
    assert resumed.final == straight.final
    assert np.array_equal(resumed.test_predictions, straight.test_predictions)
    assert sorted(p.name for p in kept[1].iterdir()) == ["state.json", "tensors.safetensors"]  # no pickles
    state = json.loads((kept[1] / "state.json").read_text())
    assert state["epoch"] == 1 and "teacher0" in state["optimizers"]  # the teacher changes: saved


def test_same_trial_twice_is_identical(tmp_path, cache_dir):
    cfg = TrainConfig(method="finetune", student="tinybert", data=DATA, **{**FAST, "epochs": 1})
    first, _, _ = _train(cfg, cache_dir, tmp_path / "a")
    second, _, _ = _train(cfg, cache_dir, tmp_path / "b")
    assert _learning(first.history) == _learning(second.history) and first.final == second.final
