"""Deep mutual learning (``trainers/methods/mutual.py``): the loss against Zhang et al.'s Eq. 10 by hand,
and the step's order: each member's gradient sees the others as constants, the members before it
at their new parameters (the paper's Algorithm 1)."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.data.batches import Batch
from trainers.engine.update import StudentUpdate
from trainers.methods.mutual import Mutual, mutual_loss

Z0 = [[1.0, 2.0], [0.5, -1.0]]
Z1 = [[0.0, 1.0], [2.0, 0.0]]
Z2 = [[3.0, 0.0], [0.0, 0.0]]
LABELS = [1, 0]


def _by_hand(logits, others):
    """CE + 1/(K−1) Σ KL(p_l ‖ p_k), batch means, in plain floats."""
    def softmax(z):
        e = [math.exp(v) for v in z]
        return [v / sum(e) for v in e]

    ce = sum(-math.log(softmax(z)[y]) for z, y in zip(logits, LABELS)) / len(LABELS)
    kl = sum(sum(p * (math.log(p) - math.log(q)) for p, q in zip(softmax(o), softmax(z)))
             for other in others for o, z in zip(other, logits)) / len(LABELS)
    return ce + kl / len(others)


@pytest.mark.parametrize(("mine", "others", "golden"), [
    (Z0, [Z1], 0.26477938571484816),
    (Z1, [Z0], 0.22845859676229682),
    (Z0, [Z1, Z2], 0.5943676693969231),  # a cohort of three: the mean of the two KL terms
])
def test_the_loss_is_eq_10_of_the_paper(mine, others, golden):
    loss = mutual_loss(torch.tensor(mine), [torch.tensor(o) for o in others], torch.tensor(LABELS))
    assert loss.item() == pytest.approx(golden, abs=1e-6)
    assert _by_hand(mine, others) == pytest.approx(golden, abs=1e-12)


def test_the_others_are_constants_of_a_members_gradient():
    """∂L_0/∂z_0 is (p_0 − y)/B + (p_0 − p_1)/B: the KL term's gradient through z_1 is not taken."""
    z0 = torch.tensor(Z0, requires_grad=True)
    z1 = torch.tensor(Z1, requires_grad=True)
    mutual_loss(z0, [z1.detach()], torch.tensor(LABELS)).backward()
    assert z1.grad is None
    p0, p1 = z0.detach().softmax(-1), torch.tensor(Z1).softmax(-1)
    onehot = torch.nn.functional.one_hot(torch.tensor(LABELS), 2).float()
    assert torch.allclose(z0.grad, ((p0 - onehot) + (p0 - p1)) / len(LABELS), atol=1e-6)


class _Logged(torch.nn.Module):
    """A linear classifier over fixed features that records the weights it was called with."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(3, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, features: torch.Tensor):
        self.seen.append(self.linear.weight.detach().clone())
        return type("Out", (), {"logits": self.linear(features)})()


def test_members_step_in_turn_each_against_the_others_latest_parameters():
    members = [_Logged(0), _Logged(1)]
    updates = [StudentUpdate(m, lr=0.1, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
               for m in members]
    before = [m.linear.weight.detach().clone() for m in members]
    features = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    batch = Batch(rows=None, labels=torch.tensor(LABELS), student={"features": features}, teachers=[])
    reported = Mutual(members, updates)(batch)

    first, second = members
    # Member 0: one forward (its step); then once more, after its step, for member 1's loss.
    assert len(first.seen) == 2 and torch.equal(first.seen[0], before[0])
    assert not torch.equal(first.seen[1], before[0]) and torch.equal(first.seen[1], first.linear.weight)
    # Member 1: one forward, before any step (its parameters had not changed when its turn came).
    assert len(second.seen) == 1 and torch.equal(second.seen[0], before[1])
    assert not torch.equal(second.linear.weight, before[1])

    # Member 1's step is the one its loss against member 0's new predictions asks for.
    replay = _Logged(1)
    replay_update = StudentUpdate(replay, lr=0.1, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    with torch.no_grad():
        new_first = first.linear(features)
    loss = mutual_loss(replay(features).logits, [new_first], torch.tensor(LABELS))
    replay_update.from_loss(loss)
    assert torch.allclose(replay.linear.weight, second.linear.weight)
    assert reported["peer1_train_loss"] == pytest.approx(loss.item())
    assert set(reported) == {"train_loss", "peer1_train_loss"}
