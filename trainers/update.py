"""The student's real optimizer step, shared by every method (fine-tune, KD, MetaDistil).

AdamW with linear warm-up then linear decay over the whole trial (warm-start epochs included, so a
warm-started student continues one schedule), gradients averaged across workers and clipped to
norm 1.0 before the step, as in the BERT fine-tuning recipe.
"""

from __future__ import annotations

import torch
from transformers import get_linear_schedule_with_warmup

from trainers.distributed import average_gradients

MAX_GRAD_NORM = 1.0


def adamw(parameters, *, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW with the fused kernel (one pass over all parameters on CPU and GPU alike): on tiny
    models with a 30,522-row embedding the optimizer step is a large share of the step time."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=True)


class StudentUpdate:
    def __init__(self, model: torch.nn.Module, *, lr: float, weight_decay: float,
                 total_steps: int, warmup_ratio: float) -> None:
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = adamw(self.parameters, lr=lr, weight_decay=weight_decay)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(warmup_ratio * total_steps), max(total_steps, 1))

    def from_loss(self, loss: torch.Tensor) -> None:
        """Step on ``∇θ loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._step()

    def from_logits(self, logits: torch.Tensor, grad_logits: torch.Tensor) -> None:
        """Step on ``(∂s/∂θ)ᵀ · grad_logits``: reuses a forward pass whose graph is still alive."""
        self.optimizer.zero_grad(set_to_none=True)
        logits.backward(grad_logits)
        self._step()

    def _step(self) -> None:
        average_gradients(self.parameters)
        torch.nn.utils.clip_grad_norm_(self.parameters, MAX_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
