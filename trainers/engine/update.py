"""The optimizer steps: the student's real step (every method) and MetaDistil's teacher step.

Both use AdamW whose weight decay skips biases and LayerNorm weights (the official MetaDistil code's
``no_decay = ['bias', 'LayerNorm.weight']``, found here by module type so that DistilBERT's
``sa_layer_norm`` counts too), gradients averaged across workers and clipped before the step.

- Student: linear warm-up then linear decay over the whole trial (warm-start epochs included, so a
  warm-started student continues one schedule), clipped to ``max_grad_norm``.
- Teacher (MetaDistil): its own rate, decay and clipping (``teacher_*``); ``linear`` decays to 0 over
  the teacher's own steps (one per meta step), after an optional warm-up; ``constant`` keeps it.
  The official code steps its teacher schedule once per meta step over the student's step count,
  so with ``num_meta_batches`` k > 1 its rate ends at about 1 − 1/k of the start; this one ends at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from trainers.runtime.distributed import average_gradients


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay for weight matrices and embeddings, none for biases and LayerNorm."""
    norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)
             for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if id(p) in norms or name.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: torch.nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel (one pass over all parameters on CPU and GPU alike): on tiny
    models with a 30,522-row embedding the optimizer step is a large share of the step time."""
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, fused=True)


class _Update:
    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 max_grad_norm: float) -> None:
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_grad_norm = max_grad_norm

    def _step(self) -> None:
        average_gradients(self.parameters)
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()


class StudentUpdate(_Update):
    def __init__(self, model: torch.nn.Module, *, lr: float, weight_decay: float,
                 total_steps: int, warmup_ratio: float, max_grad_norm: float = 1.0) -> None:
        optimizer = adamw(model, lr=lr, weight_decay=weight_decay)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps),
                                                    max(total_steps, 1))
        super().__init__(model, optimizer, scheduler, max_grad_norm)

    def from_loss(self, loss: torch.Tensor) -> None:
        """Step on ``∇θ loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._step()

    def from_outputs(self, outputs: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
        """Step on ``Σ (∂o/∂θ)ᵀ · grad_o``: reuses a forward pass whose graph is still alive."""
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(list(outputs), list(grads))
        self._step()


class TeacherUpdate(_Update):
    """One teacher's optimizer step on the meta-gradient that ``MetaDistil`` leaves in ``.grad``."""

    def __init__(self, model: torch.nn.Module, *, lr: float, weight_decay: float, total_steps: int,
                 schedule: str = "linear", warmup_ratio: float = 0.0, max_grad_norm: float = 1.0) -> None:
        optimizer = adamw(model, lr=lr, weight_decay=weight_decay)
        warmup = int(warmup_ratio * total_steps)
        scheduler = (get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
                     if schedule == "linear" else get_constant_schedule_with_warmup(optimizer, warmup))
        super().__init__(model, optimizer, scheduler, max_grad_norm)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self._step()
