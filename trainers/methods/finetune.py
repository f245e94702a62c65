"""Fine-tuning: the task loss alone, ``L(θ) = CE(f_θ(x), y)``. Trains teachers and baselines, and
warm-starts students before distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainers.data.batches import Batch
from trainers.engine.precision import full
from trainers.engine.update import StudentUpdate
from trainers.methods.registry import CostInputs, Method, Step, StepInputs, Teachers


class FineTune(Step):
    def __init__(self, student: torch.nn.Module, update: StudentUpdate) -> None:
        self.student = student
        self.update = update

    def __call__(self, batch: Batch) -> dict[str, float]:
        loss = F.cross_entropy(full(self.student(**batch.student).logits), batch.labels)
        self.update.from_loss(loss)
        return {"train_loss": loss.item()}


def _build(inputs: StepInputs) -> FineTune:
    return FineTune(inputs.trial.student.model, inputs.update)


def _cost(inputs: CostInputs) -> tuple[float, float]:
    """One training example through the student: ``c(S)``."""
    return inputs.student, 0.0


METHOD = Method("finetune", "Fine-tune", Teachers.NONE, _build, _cost, marker="s", colour="tab:gray")
