"""Knowledge distillation from frozen teachers (Hinton et al. 2015); the objective, with PKD when
``pkd_weight`` > 0, is in ``objective.py``.

A frozen teacher that sees clean text gives the same logits for an example in every epoch, so they
are computed once per (teacher, split) — :class:`CachedTeacherLogits` — and the KD epoch costs about
what a fine-tune epoch costs. Teachers run live on each batch when they see noisy text
(``noise_teachers``) or when PKD needs their hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainers.config import TrainConfig
from trainers.data.batches import Batch
from trainers.engine.update import StudentUpdate
from trainers.methods.losses import combine_teachers
from trainers.methods.objective import Objective
from trainers.methods.registry import CostInputs, Method, Step, StepInputs, Teachers


class CachedTeacherLogits:
    """The combined teacher signal for every training row, looked up by row."""

    def __init__(self, per_teacher: Sequence[torch.Tensor], weights: Sequence[float] | None) -> None:
        self.logits = combine_teachers(list(per_teacher), weights)

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, list[None]]:
        return self.logits[torch.from_numpy(batch.rows).to(self.logits.device)], []


class LiveTeachers:
    """The teachers run on the batch's teacher views, without gradients: combined logits and each
    teacher's [CLS] states (for PKD)."""

    def __init__(self, teachers: Sequence[torch.nn.Module], objective: Objective) -> None:
        self.teachers = list(teachers)
        self.objective = objective

    @torch.no_grad()
    def __call__(self, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        parts = self.objective.teachers(self.teachers, batch.teachers)
        return self.objective.combined_logits(parts), [p.states for p in parts]


# What KD's objective reads (``objective.py``) and the noise its teachers share.
READS = ("temperature", "alpha", "soft_loss", "pkd_weight", "pkd_layers", "teacher_weights",
         "noise_teachers", "noise_token")


def live_teachers(config: TrainConfig) -> bool:
    """Whether the teachers run on each batch: when they see the noisy text too, or when PKD needs
    their hidden states. Otherwise their logits are computed once (the loop's cache)."""
    return (config.noise_teachers and config.noise_p > 0) or config.pkd_weight > 0


class KD(Step):
    def __init__(self, student: torch.nn.Module, update: StudentUpdate,
                 teacher_signal: CachedTeacherLogits | LiveTeachers, objective: Objective) -> None:
        self.student = student
        self.update = update
        self.teacher_signal = teacher_signal
        self.objective = objective
        self.needs_teachers = isinstance(teacher_signal, LiveTeachers)

    def __call__(self, batch: Batch) -> dict[str, float]:
        teacher, states = self.teacher_signal(batch)
        student = self.objective.student(self.student, batch.student)
        loss = self.objective.loss(student, teacher, states, batch.labels)
        self.update.from_loss(loss)
        return {"train_loss": loss.item()}


def _build(inputs: StepInputs) -> KD:
    trial, cfg = inputs.trial, inputs.trial.config
    teachers = [t.model for t in trial.teachers]
    objective = Objective.of(cfg, trial.student.model, teachers)
    signal = (LiveTeachers(teachers, objective) if live_teachers(cfg) else
              CachedTeacherLogits([inputs.teacher_logits(i) for i in range(len(teachers))],
                                  cfg.teacher_weights))
    return KD(trial.student.model, inputs.update, signal, objective)


def _cost(inputs: CostInputs) -> tuple[float, float]:
    """Cached logits: ``c(S)`` per example, and every teacher's forward over the training split
    once; live teachers: ``c(S) + Σ c(T_i)/3`` per example (a forward without backward)."""
    if live_teachers(inputs.config):
        return inputs.student + sum(inputs.teachers) / 3, 0.0
    once = inputs.config.data.train_size * sum(inputs.teachers) * inputs.forward_share
    return inputs.student, once


METHOD = Method("kd", "KD", Teachers.FROZEN, _build, _cost, marker="^", colour="tab:blue",
                section=lambda teachers: "KD", implied=lambda teachers: len(teachers) == 1,
                compared_with="kd", reads=READS)
