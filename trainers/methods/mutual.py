"""Deep mutual learning (Zhang, Xiang, Hospedales, Lu, CVPR 2018, "Deep Mutual Learning"): a cohort
of K ≥ 2 students trained together from the start, with no pretrained teacher, each on its task
loss and on matching the others' predictions:

    L_k = CE(z_k, y) + 1/(K−1) · Σ_{l≠k} KL(p_l ‖ p_k),        p = softmax(z)     (paper Eq. 10)

KL at temperature 1 and as a batch mean, as the paper writes it. Each member's gradient sees the
others' predictions as constants (``p_l`` detached). The members take their steps in turn within a
batch, as the paper's Algorithm 1 does: member k's loss reads the members before it at their new
parameters (their predictions recomputed after their step, without gradients) and the members
after it at the batch's first forward pass (their parameters have not changed since; only their
dropout masks would differ from a fresh pass's, a departure that saves a forward pass each).

The trial's student is the cohort's first member and its peers the others; every member has its
own AdamW and schedule, built like the student's, and is evaluated, saved and logged as a model of
its own (``trainers/engine/loop.py``, ``trainers/runtime/worker.py``). The cohort shares one tokenization
of the batch: its members share a tokenizer (checked when the trial is built).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from trainers.data.batches import Batch
from trainers.engine.precision import full
from trainers.engine.update import StudentUpdate
from trainers.methods.registry import CostInputs, Method, Step, StepInputs, Teachers


def mutual_loss(logits: torch.Tensor, others: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """``L_k`` above for the member with ``logits``; ``others`` are the other members' logits,
    which the caller detaches (they are constants of this member's step)."""
    log_p = F.log_softmax(logits, dim=-1)
    mimicry = sum(F.kl_div(log_p, F.log_softmax(z, dim=-1), log_target=True, reduction="batchmean")
                  for z in others)
    return F.cross_entropy(logits, labels) + mimicry / len(others)


class Mutual(Step):
    def __init__(self, members: Sequence[torch.nn.Module], updates: Sequence[StudentUpdate]) -> None:
        self.members = list(members)
        self.updates = list(updates)

    def __call__(self, batch: Batch) -> dict[str, float]:
        logits = [full(member(**batch.student).logits) for member in self.members]
        losses = []
        for k, (member, update) in enumerate(zip(self.members, self.updates)):
            loss = mutual_loss(logits[k], [z.detach() for i, z in enumerate(logits) if i != k],
                               batch.labels)
            update.from_loss(loss)
            losses.append(loss.item())
            if k < len(self.members) - 1:  # the next members see this one at its new parameters
                with torch.no_grad():
                    logits[k] = full(member(**batch.student).logits)
        return {"train_loss": losses[0], **{f"peer{i}_train_loss": v for i, v in enumerate(losses[1:], 1)}}

    def trained_peers(self) -> list[StudentUpdate]:
        return self.updates[1:]


def _build(inputs: StepInputs) -> Mutual:
    trial, cfg = inputs.trial, inputs.trial.config
    peers = [peer.model for peer in trial.peers]
    updates = [StudentUpdate(peer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             total_steps=inputs.steps_per_epoch * cfg.epochs,
                             warmup_ratio=cfg.warmup_ratio, max_grad_norm=cfg.max_grad_norm)
               for peer in peers]
    return Mutual([trial.student.model, *peers], [inputs.update, *updates])


def _cost(inputs: CostInputs) -> tuple[float, float]:
    """Every member's training step, ``Σ_k c(S_k)``, and a forward pass of each member but the last
    again after its step (a third of a training example's cost)."""
    members = (inputs.student, *inputs.peers)
    return sum(members) + sum(members[:-1]) / 3, 0.0


METHOD = Method("mutual", "DML", Teachers.NONE, _build, _cost, marker="P", colour="tab:purple",
                section=lambda teachers: "Mutual learning", cohort=True)
