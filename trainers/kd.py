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

from trainers.batches import Batch
from trainers.losses import combine_teachers
from trainers.objective import Objective
from trainers.update import StudentUpdate


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


class KD:
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
