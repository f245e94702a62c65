"""Fine-tuning: the task loss alone, ``L(θ) = CE(f_θ(x), y)``. Trains teachers and baselines, and
warm-starts students before distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainers.batches import Batch
from trainers.precision import full
from trainers.update import StudentUpdate


class FineTune:
    needs_teachers = False

    def __init__(self, student: torch.nn.Module, update: StudentUpdate) -> None:
        self.student = student
        self.update = update

    def __call__(self, batch: Batch) -> dict[str, float]:
        loss = F.cross_entropy(full(self.student(**batch.student).logits), batch.labels)
        self.update.from_loss(loss)
        return {"train_loss": loss.item()}
