"""``train.precision``: validated and keyed like every setting; ``bf16`` really trains a step of
each method on a CPU (under autocast, so not the float32 numbers); ``tf32`` on a CPU is float32 to
the bit; the process-wide TF32 switch is restored after a trial."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.trainers.methods import metadistil_setup as t
from trainers.config import ConfigError, Hyper, distillation_only, unkeyed, unkeyed_at_default
from trainers.data.batches import Batch
from trainers.engine import precision
from trainers.engine.update import StudentUpdate
from trainers.methods.finetune import FineTune
from trainers.methods.kd import KD, LiveTeachers

CPU = torch.device("cpu")


def test_precision_is_validated_and_names_the_fix():
    assert Hyper().precision == "fp32"
    assert Hyper(precision="bf16").precision == "bf16"
    with pytest.raises(ConfigError, match=r"^precision='fp16': use one of fp32, tf32, bf16$"):
        Hyper(precision="fp16")


def test_precision_is_keyed_away_from_fp32_so_stored_trials_keep_their_keys():
    assert "precision" not in unkeyed() and "precision" not in distillation_only()
    assert unkeyed_at_default(Hyper()) == ("precision",)
    assert unkeyed_at_default(Hyper(precision="bf16")) == ()


def _models():
    """float32 copies of the exactness tests' tiny student (dropout on) and teachers."""
    student = t._distilbert(0, layers=2, dropout=0.1).float().cpu().train()
    teachers = [t._bert(1).float().cpu(), t._bert(2, hidden=24).float().cpu()]
    return student, teachers


def _batch() -> Batch:
    views = [t._inputs(10, 6, 7), t._inputs(11, 6, 9)]
    return Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0]), t._inputs(10, 6, 7),
                 [{k: v.cpu() for k, v in view.items()} for view in views])


def _one_step(method: str, mode: str) -> tuple[float, torch.Tensor, torch.Tensor]:
    """``(reported loss, student parameters before, after)`` for one step of ``method``."""
    student, teachers = _models()
    before = torch.cat([p.detach().reshape(-1) for p in student.parameters()]).clone()
    update = StudentUpdate(student, lr=1e-2, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    if method == "finetune":
        step = FineTune(student, update)
    elif method == "kd":
        step = KD(student, update, LiveTeachers(teachers, t._objective()), t._objective())
    else:
        quiz = ({k: v.cpu() for k, v in t._inputs(20, 5, 6).items()}, torch.tensor([1, 0, 1, 1, 0]))
        step = t._step(student, teachers, quiz)
        step.pilot_lr = 1e-2
    torch.manual_seed(0)
    with precision.applied(mode, CPU):
        loss = step(copy.deepcopy(_batch()))["train_loss"]
    after = torch.cat([p.detach().reshape(-1) for p in student.parameters()])
    return loss, before, after


@pytest.mark.parametrize("method", ["finetune", "kd", "metadistil"])
def test_bf16_trains_a_step_on_cpu(method):
    loss, before, after = _one_step(method, "bf16")
    reference, _, _ = _one_step(method, "fp32")
    assert np.isfinite(loss) and torch.isfinite(after).all()
    assert not torch.equal(after, before)  # it stepped
    assert loss != reference  # in bfloat16: not the float32 numbers
    assert abs(loss - reference) < 0.05 * abs(reference)  # but close to them


@pytest.mark.parametrize("method", ["finetune", "metadistil"])
def test_tf32_on_a_cpu_is_fp32_to_the_bit(method):
    loss, _, after = _one_step(method, "tf32")
    reference, _, after_fp32 = _one_step(method, "fp32")
    assert loss == reference and torch.equal(after, after_fp32)


def test_autocast_is_on_inside_and_the_tf32_switch_is_restored():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with precision.applied("bf16", CPU):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with precision.applied("tf32", CPU):
        assert matmul.fp32_precision == "tf32" and not torch.is_autocast_enabled("cpu")
    assert matmul.fp32_precision == before and not torch.is_autocast_enabled("cpu")
