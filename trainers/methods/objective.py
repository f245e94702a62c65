"""The distillation objective on model outputs, shared by KD's step and MetaDistil's pilot and real
steps (the official code uses one loss for all three):

    L = α · T² · soft(s/T, t/T) + (1 − α) · CE(s, y) + β · Σ_i w_i · PKD(h_s, h_t,i)

``s`` and ``t`` are the student's and the combined teachers' logits (``losses.py``), ``h`` the
[CLS] states of matched layers (``pkd.py``), ``w_i`` the teachers' normalised weights (their mean
by default). With β = 0 no hidden state is asked for, and the objective is KD on logits alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch.func import functional_call

from trainers.config import TrainConfig
from trainers.engine.precision import full
from trainers.methods.losses import combine_teachers, kd_loss
from trainers.methods.pkd import Shape, cls_states, matched_layers, patience_loss


class Outputs(NamedTuple):
    """What a model contributes to the objective: logits, and [CLS] states when PKD is on."""

    logits: torch.Tensor
    states: torch.Tensor | None = None


class Objective:
    def __init__(self, *, temperature: float, alpha: float, soft_loss: str,
                 weights: Sequence[float] | None = None, pkd_weight: float = 0.0,
                 pkd_layers: str = "skip", student_shape: Shape | None = None,
                 teacher_shapes: Sequence[Shape] = ()) -> None:
        self.loss_args = {"temperature": temperature, "alpha": alpha, "kind": soft_loss}
        self.weights = weights
        self.pkd_weight = pkd_weight
        self.student_layers: list[int] = []
        self.teacher_layers: list[list[int]] = []
        if pkd_weight > 0:
            pairs = [matched_layers(student_shape, shape, pkd_layers) for shape in teacher_shapes]
            self.student_layers = pairs[0][0] if pairs else []
            self.teacher_layers = [teacher for _, teacher in pairs]

    @classmethod
    def of(cls, config: TrainConfig, student: torch.nn.Module,
           teachers: Sequence[torch.nn.Module]) -> Objective:
        """The objective a trial's config (``TrainConfig``) asks for, between these models."""
        return cls(temperature=config.temperature, alpha=config.alpha, soft_loss=config.soft_loss,
                   weights=config.teacher_weights, pkd_weight=config.pkd_weight,
                   pkd_layers=config.pkd_layers, student_shape=shape_of(student),
                   teacher_shapes=[shape_of(t) for t in teachers])

    @property
    def pkd(self) -> bool:
        return self.pkd_weight > 0

    def student(self, model: torch.nn.Module, inputs: Mapping[str, torch.Tensor],
                params: Mapping[str, torch.Tensor] | None = None) -> Outputs:
        """The student's outputs, at its own parameters or at ``params`` (a pilot θ′)."""
        return self._outputs(model, inputs, params, self.student_layers)

    def teacher(self, model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], index: int) -> Outputs:
        return self._outputs(model, inputs, None, self.teacher_layers[index] if self.pkd else [])

    def teachers(self, models: Sequence[torch.nn.Module],
                 views: Sequence[Mapping[str, torch.Tensor]]) -> list[Outputs]:
        return [self.teacher(m, v, i) for i, (m, v) in enumerate(zip(models, views))]

    def combined_logits(self, teachers: Sequence[Outputs]) -> torch.Tensor:
        return combine_teachers([t.logits for t in teachers], self.weights)

    def loss(self, student: Outputs, teacher_logits: torch.Tensor,
             teacher_states: Sequence[torch.Tensor | None], labels: torch.Tensor) -> torch.Tensor:
        """L above, from the combined teacher logits and each teacher's states."""
        loss = kd_loss(student.logits, teacher_logits, labels, **self.loss_args)
        if not self.pkd:
            return loss
        weights = self.weights or [1.0] * len(teacher_states)
        total = float(sum(weights))
        pkd = sum(w / total * patience_loss(student.states, h) for w, h in zip(weights, teacher_states))
        return loss + self.pkd_weight * pkd

    def _outputs(self, model: torch.nn.Module, inputs: Mapping[str, torch.Tensor],
                 params: Mapping[str, torch.Tensor] | None, layers: list[int]) -> Outputs:
        kwargs = {**inputs, "output_hidden_states": True} if layers else dict(inputs)
        out = model(**kwargs) if params is None else functional_call(model, dict(params), kwargs=kwargs)
        # float32 for the losses, also under bf16 autocast (a no-op in float32)
        states = full(cls_states(out.hidden_states, layers)) if layers else None
        return Outputs(full(out.logits), states)


def shape_of(model: torch.nn.Module) -> Shape:
    return Shape.of(model.config)
