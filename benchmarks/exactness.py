"""Prints how exact MetaDistil's teacher gradient is, in float64, for each case the tests check:

- against the create_graph reference of tests/trainers/methods/test_metadistil_dropout.py (the textbook
  computation,
  written apart from trainers/methods/metadistil.py): the largest element-wise difference relative to the
  reference's largest element. For k = 1 MetaDistil takes another route (a forward-mode JVP of the
  student, the mixed derivative at the outputs); for the k = 2 unroll it differentiates as the
  reference does (create_graph through the pilot steps, then one backward), so a 0 there says the
  code matches the textbook computation operation for operation, not that two methods agree;
- against forward mode over φ (``torch.func.jvp`` through ``torch.func.grad`` pilot steps), a mode
  of differentiation neither uses: |⟨g, d⟩ − jvp| / |jvp| along a random direction d of every
  teacher's parameters.

    python benchmarks/exactness.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.trainers.methods import test_metadistil_dropout as t  # noqa: E402
from trainers.data.batches import Batch  # noqa: E402
from trainers.engine import rng  # noqa: E402
from trainers.methods.objective import shape_of  # noqa: E402


def _relative(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, reference))


def _forward(ours, student, teachers, batches, quiz, objective, state) -> float:
    directions = [t._directions(m, seed=7 + i) for i, m in enumerate(teachers)]
    forward = t._forward_mode(student, teachers, batches, quiz, objective, state, directions)
    return abs(t._along(ours, directions) - forward) / abs(forward)


def _cases():
    student, teachers = t._distilbert(0, layers=2, dropout=0.1).train(), [t._bert(1), t._bert(2, hidden=24)]
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0]), t._inputs(10, 6, 7),
                  [t._inputs(10, 6, 7), t._inputs(11, 6, 9)])
    quiz = (t._inputs(20, 5, 6), torch.tensor([1, 0, 1, 1, 0]))
    state = rng.get_state()
    ours = t._meta_gradients(student, teachers, batch, quiz, state=state)
    yield ("k=1, dropout 0.1 (mask replayed), quiz without dropout",
           _relative(ours, t._reference(student, teachers, [batch], quiz, t._objective(), state)),
           _forward(ours, student, teachers, [batch], quiz, t._objective(), state))

    pkd_teachers = [t._bert(1, layers=4), t._bert(2, layers=2)]
    shapes = {"student_shape": shape_of(student), "teacher_shapes": [shape_of(m) for m in pkd_teachers]}
    for layers in ("skip", "last"):
        objective = t._objective(pkd_weight=3.0, pkd_layers=layers, weights=[1.0, 3.0], **shapes)
        ours = t._meta_gradients(student, pkd_teachers, batch, quiz, objective=objective, state=state)
        yield (f"k=1, dropout 0.1, PKD β=3 ({layers}), two teachers weighted 1:3",
               _relative(ours, t._reference(student, pkd_teachers, [batch], quiz, objective, state)),
               _forward(ours, student, pkd_teachers, [batch], quiz, objective, state))

    second = Batch(np.arange(6), torch.tensor([1, 1, 0, 0, 1, 0]), t._inputs(30, 6, 5),
                   [t._inputs(30, 6, 5), t._inputs(31, 6, 8)])
    start = copy.deepcopy(student)
    step = t._step(student, teachers, quiz, num_meta_batches=2)
    rng.set_state(state)
    step(batch)
    step(second)
    ours = t._flat_grads(teachers)
    yield ("k=2 unrolled pilot, dropout 0.1",
           _relative(ours, t._reference(start, teachers, [batch, second], quiz, t._objective(), state)),
           _forward(ours, start, teachers, [batch, second], quiz, t._objective(), state))


def main() -> None:
    torch.manual_seed(0)
    print(f"float64, tiny models, pilot step {t.PILOT_LR} (large, so the second-order term dominates)")
    print(f"{'case':62} {'vs create_graph':>16} {'vs forward mode':>16}")
    for name, reference, forward in _cases():
        print(f"{name:62} {reference:>16.2e} {forward:>16.2e}")


if __name__ == "__main__":
    main()
