"""Prints how exact MetaDistil's teacher gradient is, in float64, against the create_graph
reference of tests/trainers/test_metadistil.py (the textbook computation, written apart from
trainers/metadistil.py): the largest element-wise difference relative to the reference's largest
element, for each case the tests check.

    python benchmarks/exactness.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.trainers import test_metadistil as t  # noqa: E402
from trainers import rng  # noqa: E402
from trainers.batches import Batch  # noqa: E402
from trainers.objective import shape_of  # noqa: E402


def _relative(ours: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, reference))


def _cases():
    student, teachers = t._distilbert(0, layers=2, dropout=0.1).train(), [t._bert(1), t._bert(2, hidden=24)]
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0]), t._inputs(10, 6, 7),
                  [t._inputs(10, 6, 7), t._inputs(11, 6, 9)])
    quiz = (t._inputs(20, 5, 6), torch.tensor([1, 0, 1, 1, 0]))
    state = rng.get_state()
    yield ("k=1, dropout 0.1 (mask replayed), quiz without dropout",
           t._meta_gradients(student, teachers, batch, quiz, state=state),
           t._reference(student, teachers, [batch], quiz, t._objective(), state))

    pkd_teachers = [t._bert(1, layers=4), t._bert(2, layers=2)]
    shapes = {"student_shape": shape_of(student), "teacher_shapes": [shape_of(m) for m in pkd_teachers]}
    for layers in ("skip", "last"):
        objective = t._objective(pkd_weight=3.0, pkd_layers=layers, weights=[1.0, 3.0], **shapes)
        yield (f"k=1, dropout 0.1, PKD β=3 ({layers}), two teachers weighted 1:3",
               t._meta_gradients(student, pkd_teachers, batch, quiz, objective=objective, state=state),
               t._reference(student, pkd_teachers, [batch], quiz, objective, state))

    second = Batch(np.arange(6), torch.tensor([1, 1, 0, 0, 1, 0]), t._inputs(30, 6, 5),
                   [t._inputs(30, 6, 5), t._inputs(31, 6, 8)])
    import copy
    start = copy.deepcopy(student)
    step = t._step(student, teachers, quiz, num_meta_batches=2)
    rng.set_state(state)
    step(batch)
    step(second)
    yield ("k=2 unrolled pilot, dropout 0.1", t._flat_grads(teachers),
           t._reference(start, teachers, [batch, second], quiz, t._objective(), state))


def main() -> None:
    torch.manual_seed(0)
    print(f"float64, tiny models, pilot step {t.PILOT_LR} (large, so the second-order term dominates)")
    print(f"{'case':62} {'max |ours − ref| / max |ref|':>30}")
    for name, ours, reference in _cases():
        print(f"{name:62} {_relative(ours, reference):>30.2e}")


if __name__ == "__main__":
    main()
