"""PKD's layer matching as the official MetaDistil code's ``--select``, and its loss's golden values."""

from __future__ import annotations

import pytest
import torch

from trainers.methods.pkd import PkdError, Shape, cls_states, matched_layers, patience_loss


@pytest.mark.parametrize(("teacher", "student", "how", "expected"), [
    (12, 6, "skip", [2, 4, 6, 8, 10]),   # the official order [1, 3, 5, 7, 9] over layers 1 … 11
    (12, 6, "last", [7, 8, 9, 10, 11]),
    (12, 4, "skip", [3, 6, 9]),
    (12, 3, "skip", [4, 8]),
    (12, 5, "skip", [2, 4, 6, 8]),        # every 2nd, cut to 4: not spread evenly, as the official code
    (12, 8, "skip", [1, 2, 3, 4, 5, 6, 7]),
    (6, 2, "skip", [3]),                  # MiniLM → its 2-layer cut
    (6, 2, "last", [5]),
    (2, 2, "skip", [1]),
])
def test_teacher_layers_match_the_official_selection(teacher, student, how, expected):
    student_layers, teacher_layers = matched_layers(Shape(student, 8), Shape(teacher, 8), how)
    assert student_layers == list(range(1, student)) and teacher_layers == expected


@pytest.mark.parametrize(("student", "teacher", "says"), [
    (Shape(2, 312), Shape(12, 768), "312 wide and the teacher's 768"),
    (Shape(1, 8), Shape(4, 8), "no intermediate layer"),
    (Shape(6, 8), Shape(4, 8), "at least as deep"),
])
def test_unpairable_models_are_refused_in_one_line(student, teacher, says):
    with pytest.raises(PkdError, match=says) as error:
        matched_layers(student, teacher, "skip")
    assert "pkd_weight: 0" in str(error.value) and "\n" not in str(error.value)


def test_cls_states_take_the_first_position_of_each_layer():
    hidden = tuple(torch.arange(2 * 3 * 4, dtype=torch.float).reshape(2, 3, 4) + 100 * i for i in range(4))
    states = cls_states(hidden, [1, 3])
    assert states.shape == (2, 2, 4)
    torch.testing.assert_close(states[:, 0], hidden[1][:, 0])
    torch.testing.assert_close(states[:, 1], hidden[3][:, 0])


def test_patience_loss_golden_values():
    """Normalised vectors (3, 4)/5 and (0, 1): ((0.6 − 0)² + (0.8 − 1)²) / 2 = 0.2; scale-free."""
    s = torch.tensor([[[3.0, 4.0]]])
    t = torch.tensor([[[0.0, 2.0]]])
    assert patience_loss(s, t).item() == pytest.approx(0.2)
    assert patience_loss(10 * s, 0.1 * t).item() == pytest.approx(0.2)
    assert patience_loss(s, s).item() == 0.0
