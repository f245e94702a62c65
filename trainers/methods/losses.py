"""Distillation losses on sequence-level logits.

KD (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network")::

    L_kd(s, t, y) = α · T² · soft(s/T, t/T) + (1 − α) · CE(s, y)

with ``p = softmax(z / T)`` and, per batch mean,

    soft = KL(p_t ‖ p_s) = Σ_c p_t,c (log p_t,c − log p_s,c)          (``kind="kl"``, default)
    soft = (1/C) Σ_c (p_s,c − p_t,c)²                                  (``kind="mse"``, as in the
                                                                        official MetaDistil code)

The T² factor keeps the soft gradients' scale independent of T. Several teachers are combined
into one signal before the loss: ``t = Σ_i w_i t_i / Σ_i w_i`` (the mean when weights are equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
              kind: str = "kl") -> torch.Tensor:
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher / temperature, dim=-1)
    if kind == "kl":
        return F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean")
    return F.mse_loss(log_p_s.exp(), log_p_t.exp())


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, *,
            temperature: float, alpha: float, kind: str = "kl") -> torch.Tensor:
    soft = soft_loss(student, teacher, temperature, kind)
    hard = F.cross_entropy(student, labels)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard


def combine_teachers(logits: Sequence[torch.Tensor], weights: Sequence[float] | None = None
                     ) -> torch.Tensor:
    if len(logits) == 1:
        return logits[0]
    if weights is None:
        return torch.stack(list(logits)).mean(dim=0)
    total = float(sum(weights))
    return sum(w / total * z for w, z in zip(weights, logits))
