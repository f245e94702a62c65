"""The benchmark's naive official-style step (``benchmarks/naive_metadistil.py``) computes the same
teacher gradient as ``trainers/methods/metadistil.py``, in float64, with dropout on and the same random
state (so the same dropout mask in the pilot forward), with and without PKD: the speed ratio
``bench_steps.py`` prints compares two exact computations of one thing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.naive_metadistil import NaiveMetaDistil
from tests.trainers.methods import metadistil_setup as t
from trainers.data.batches import Batch
from trainers.engine import rng
from trainers.engine.update import StudentUpdate
from trainers.methods.objective import shape_of


def _case():
    student = t._distilbert(0, layers=2, dropout=0.1).train()
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0], device=t.DEVICE), t._inputs(10, 6, 7),
                  [t._inputs(10, 6, 7), t._inputs(11, 6, 9)])
    quiz = (t._inputs(20, 5, 6), torch.tensor([1, 0, 1, 1, 0], device=t.DEVICE))
    return student, batch, quiz


@pytest.mark.parametrize("pkd", [False, True])
def test_naive_step_gives_the_teachers_the_same_gradient(pkd):
    student, batch, quiz = _case()
    teachers = [t._bert(1, layers=4), t._bert(2, hidden=16 if pkd else 24)]
    extra = ({"pkd_weight": 3.0, "student_shape": shape_of(student),
              "teacher_shapes": [shape_of(m) for m in teachers]} if pkd else {})
    objective = t._objective(**extra)
    state = rng.get_state()
    ours = t._meta_gradients(student, teachers, batch, quiz, objective=objective, state=state)

    for teacher in teachers:
        teacher.zero_grad(set_to_none=True)
    update = StudentUpdate(student, lr=1e-3, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    naive = NaiveMetaDistil(student, update, teachers, t._readable_updates(teachers), [quiz],
                            objective=objective, pilot_lr=t.PILOT_LR)
    rng.set_state(state)
    naive.teacher_step(batch)
    for a, b in zip(ours, t._flat_grads(teachers)):
        assert b.abs().max() > 1e-6  # a real second-order signal, not two zeros
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
