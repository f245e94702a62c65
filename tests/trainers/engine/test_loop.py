"""Each loop on a real SST-2 slice, on CPU, without Ray: every architecture as student and as
teacher; the loss falls and validation accuracy beats the majority class. Plus exact resume, and
MetaDistil's k-step unrolled pilot (num_meta_batches = 2) as a whole trial: its step counts and
schedules, and its exact resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SST2
from trainers.config import DataConfig, TrainConfig
from trainers.engine.loop import Trial, run

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


# Every architecture once as a student and once as a teacher; MetaDistil (7× KD's cost a step)
# once, with two teachers. Its one-teacher trial is the resume test's below.
@pytest.mark.parametrize("method, student, teacher_names", [
    ("kd", "distilbert", ("roberta",)),
    ("kd", "bert", ("distilbert",)),
    ("kd", "roberta", ("tinybert",)),
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
    """Two epochs straight vs. one epoch, a fresh process state, and a resume from that
    checkpoint: the final metrics and the per-example predictions are identical."""
    cfg = TrainConfig(method="metadistil", student="tinybert", data=DATA, teachers=("bert",),
                      teacher_dirs=(teachers["bert"][0],), noise_p=0.1, warmup_epochs=1,
                      **{**FAST, "epochs": 2})
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


# The official k-step unrolled pilot (num_meta_batches = 2) as a whole trial: 40 training rows in
# batches of 8 make 5 batches an epoch, an odd count, so each epoch has two full meta steps and
# the flush of a one-batch buffer at its end (MetaDistil.finish_epoch). A random tiny BERT teaches
# the tiny TinyBERT student; two quiz batches, so a resume that lost the meta-step count would
# score the wrong one.
K2_DATA = DataConfig(source=str(SST2), train_size=40, quiz_size=16, test_size=20, max_length=32)
K2 = TrainConfig(method="metadistil", student="tinybert", teachers=("bert",), data=K2_DATA,
                 num_meta_batches=2, quiz_batch_size=8, epochs=2, batch_size=8, lr=1e-3,
                 teacher_lr=1e-3, pilot_lr=1e-3, teacher_weight_decay=0.01)
K2_BATCHES = 5  # per epoch: ceil(40 / 8)
K2_META = 3  # per epoch: ceil(5 / 2), the last one the flush of a one-batch buffer


@pytest.fixture(scope="module")
def unrolled(tmp_path_factory, cache_dir):
    """The k = 2 trial run straight through, watched: the learning rate each teacher step used,
    and the rows of each real student step, per epoch."""
    from trainers.engine.update import TeacherUpdate
    from trainers.methods.metadistil import MetaDistil

    teacher_lrs: list[float] = []
    real_steps: list[np.ndarray] = []
    teacher_step, real_step = TeacherUpdate.step, MetaDistil._real_step

    def watched_teacher_step(self):
        teacher_lrs.append(self.optimizer.param_groups[0]["lr"])
        teacher_step(self)

    def watched_real_step(self, batch, student):
        real_steps.append(batch.rows.copy())
        return real_step(self, batch, student)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TeacherUpdate, "step", watched_teacher_step)
        patch.setattr(MetaDistil, "_real_step", watched_real_step)
        result, kept, trial = _train(K2, cache_dir, tmp_path_factory.mktemp("unrolled"))
    return result, kept, trial, teacher_lrs, real_steps


def _state(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


def test_unrolled_pilot_trial_steps_the_teachers_once_per_k_batches(unrolled):
    """The teachers step once per 2 batches, the short buffer's flush included (3 an epoch), and
    their linear schedule spans exactly those steps: every step has a rate above 0, the rates fall
    by 1/6 of the start each step, and the schedule reaches 0 after the last step, not before."""
    result, kept, _, teacher_lrs, _ = unrolled
    steps = K2_META * K2.epochs
    assert len(teacher_lrs) == steps
    np.testing.assert_allclose(teacher_lrs, [K2.teacher_lr * (steps - i) / steps for i in range(steps)],
                               rtol=1e-12)
    for epoch, meta_steps in ((1, K2_META), (2, steps)):
        state = _state(kept[epoch])
        assert state["meta_steps"] == meta_steps and state["distil_steps"] == K2_BATCHES * epoch
        assert state["schedulers"]["teacher0"]["last_epoch"] == meta_steps
    assert _state(kept[1])["schedulers"]["teacher0"]["_last_lr"] == pytest.approx([K2.teacher_lr / 2] * 2)
    assert _state(kept[2])["schedulers"]["teacher0"]["_last_lr"] == [0.0, 0.0]
    assert all(np.isfinite(h["quiz_loss"]) and h["quiz_loss"] > 0 for h in result.history)


def test_unrolled_pilot_trial_steps_the_student_once_per_batch(unrolled, cache_dir):
    """One real step per batch, none for the pilot: 5 an epoch, each training row in exactly one of
    them, and the student's schedule spans the trial's 10 batches. The teachers did move."""
    _, kept, trial, _, real_steps = unrolled
    assert len(real_steps) == K2_BATCHES * K2.epochs
    for epoch in range(K2.epochs):
        rows = np.concatenate(real_steps[epoch * K2_BATCHES:(epoch + 1) * K2_BATCHES])
        assert sorted(rows.tolist()) == list(range(K2_DATA.train_size))
    for epoch in (1, 2):
        assert _state(kept[epoch])["schedulers"]["student"]["last_epoch"] == K2_BATCHES * epoch
    assert _state(kept[2])["schedulers"]["student"]["_last_lr"] == [0.0, 0.0]
    random_teacher = Trial.build(K2, cache_dir=cache_dir, device=torch.device("cpu")).teachers[0].model
    assert any(not torch.equal(a, b) for a, b in zip(random_teacher.state_dict().values(),
                                                     trial.teachers[0].model.state_dict().values()))


def test_unrolled_pilot_trial_resumes_exactly(unrolled, tmp_path, cache_dir):
    """Two epochs straight vs. a resume from the first epoch's checkpoint with the process's random
    state scrambled: the same metrics, test predictions, and student and teacher weights, bit for bit
    (the checkpoint restores the meta-step count that picks the quiz batch)."""
    straight, kept, trial, _, _ = unrolled
    torch.manual_seed(12345)
    resumed, _, again = _train(K2, cache_dir, tmp_path, resume=kept[1])
    assert _learning(resumed.history) == _learning(straight.history)
    assert resumed.final == straight.final
    assert np.array_equal(resumed.test_predictions, straight.test_predictions)
    for ours, theirs in [(again.student, trial.student), (again.teachers[0], trial.teachers[0])]:
        mine, other = ours.model.state_dict(), theirs.model.state_dict()
        assert all(torch.equal(mine[k], other[k]) for k in other)
