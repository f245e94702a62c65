"""Knowledge distillation from frozen teachers (Hinton et al. 2015); the loss is in ``losses.py``.

A frozen teacher that sees clean text gives the same logits for an example in every epoch, so they
are computed once per (teacher, split) — :class:`CachedTeacherLogits` — and the KD epoch costs about
what a fine-tune epoch costs. With ``noise_teachers`` the teachers see noisy text and run live.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainers.batches import Batch
from trainers.losses import combine_teachers, kd_loss
from trainers.update import StudentUpdate


class CachedTeacherLogits:
    """The combined teacher signal for every training row, looked up by row."""

    def __init__(self, per_teacher: Sequence[torch.Tensor], weights: Sequence[float] | None) -> None:
        self.logits = combine_teachers(list(per_teacher), weights)

    def __call__(self, batch: Batch) -> torch.Tensor:
        return self.logits[torch.from_numpy(batch.rows).to(self.logits.device)]


class LiveTeacherLogits:
    """The combined signal of teachers run on the batch's teacher views, without gradients."""

    def __init__(self, teachers: Sequence[torch.nn.Module], weights: Sequence[float] | None) -> None:
        self.teachers = list(teachers)
        self.weights = weights

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        return combine_teachers([t(**inputs).logits for t, inputs in zip(self.teachers, batch.teachers)],
                                self.weights)


class KD:
    def __init__(self, student: torch.nn.Module, update: StudentUpdate,
                 teacher_signal: CachedTeacherLogits | LiveTeacherLogits, *, temperature: float,
                 alpha: float, soft_loss: str) -> None:
        self.student = student
        self.update = update
        self.teacher_signal = teacher_signal
        self.needs_teachers = isinstance(teacher_signal, LiveTeacherLogits)
        self.loss_args = {"temperature": temperature, "alpha": alpha, "kind": soft_loss}

    def __call__(self, batch: Batch) -> dict[str, float]:
        teacher = self.teacher_signal(batch)
        loss = kd_loss(self.student(**batch.student).logits, teacher, batch.labels, **self.loss_args)
        self.update.from_loss(loss)
        return {"train_loss": loss.item()}
