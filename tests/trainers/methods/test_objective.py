"""The distillation objective: α = 0 is the task loss alone, α = 1 the soft loss alone; a pilot's
parameters are used without touching the model's; several teachers' logits combine by their
weights; PKD adds β times the patience loss of matched [CLS] states, nothing between a student
and an identical teacher, and asks no hidden state when β = 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, BertConfig

from trainers.methods.losses import soft_loss
from trainers.methods.objective import Objective, shape_of

LABELS = torch.tensor([0, 1, 1, 0])


def _model(layers: int, seed: int, hidden: int = 16) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, num_labels=2)
    return AutoModelForSequenceClassification.from_config(config).eval()


def _inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(1, 30, (4, 6), generator=torch.Generator().manual_seed(5))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _objective(**kwargs) -> Objective:
    return Objective(**{"temperature": 2.0, "alpha": 0.5, "soft_loss": "kl", **kwargs})


def test_alpha_weighs_the_soft_loss_against_the_task_loss():
    student = _objective().student(_model(2, 0), _inputs())
    teacher = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    hard = F.cross_entropy(student.logits, LABELS)
    soft = soft_loss(student.logits, teacher, 2.0)
    def loss(alpha, teacher_logits):
        return _objective(alpha=alpha).loss(student, teacher_logits, [], LABELS).item()

    assert loss(0.0, teacher) == pytest.approx(hard.item())
    assert loss(1.0, teacher) == pytest.approx(4 * soft.item())  # T² = 4
    assert loss(1.0, student.logits) == pytest.approx(0, abs=1e-6)


def test_a_pilots_parameters_are_used_and_the_model_is_left_alone():
    model, objective = _model(2, 0), _objective()
    own = dict(model.named_parameters())
    plain = objective.student(model, _inputs()).logits
    assert torch.equal(objective.student(model, _inputs(), own).logits, plain)
    pilot = {name: p.detach() + 0.1 for name, p in own.items()}
    before = [p.detach().clone() for p in model.parameters()]
    moved = objective.student(model, _inputs(), pilot).logits
    assert not torch.allclose(moved, plain)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_teachers_combine_by_their_weights():
    a, b = torch.zeros(4, 2), torch.ones(4, 2)
    outputs = [_objective().student(_model(2, 0), _inputs())._replace(logits=z) for z in (a, b)]
    assert torch.equal(_objective().combined_logits(outputs), torch.full((4, 2), 0.5))
    assert torch.equal(_objective(weights=[3.0, 1.0]).combined_logits(outputs), torch.full((4, 2), 0.25))
    assert torch.equal(_objective(weights=[1.0, 0.0]).combined_logits(outputs), a)


def test_without_pkd_no_hidden_state_is_asked_for():
    objective = _objective()
    assert not objective.pkd and objective.student(_model(2, 0), _inputs()).states is None
    assert objective.teachers([_model(4, 1)], [_inputs()])[0].states is None


def test_pkd_matches_cls_states_and_adds_beta_times_the_patience_loss():
    student, teacher = _model(2, 0), _model(4, 1)
    objective = _objective(pkd_weight=100.0, student_shape=shape_of(student),
                           teacher_shapes=[shape_of(teacher)])
    assert (objective.student_layers, objective.teacher_layers) == ([1], [[2]])  # skip: every 4 // 2
    s = objective.student(student, _inputs())
    (t,) = objective.teachers([teacher], [_inputs()])
    assert s.states.shape == t.states.shape == (4, 1, 16)
    hidden = teacher(**_inputs(), output_hidden_states=True).hidden_states
    assert torch.equal(t.states[:, 0], hidden[2][:, 0])  # teacher layer 2's [CLS]
    plain = _objective().loss(s, t.logits, [t.states], LABELS)
    with_pkd = objective.loss(s, t.logits, [t.states], LABELS)
    expected = F.mse_loss(F.normalize(s.states, dim=-1), F.normalize(t.states, dim=-1))
    assert (with_pkd - plain).item() == pytest.approx(100 * expected.item(), rel=1e-5)
    assert expected > 0
    twin = objective.student(student, _inputs())  # an identical teacher: nothing to learn from its states
    assert objective.loss(s, t.logits, [twin.states], LABELS).item() == pytest.approx(plain.item())


def test_pkd_of_two_teachers_is_their_weighted_mean():
    student, teachers = _model(2, 0), [_model(2, 1), _model(2, 2)]
    shapes = {"student_shape": shape_of(student), "teacher_shapes": [shape_of(t) for t in teachers]}
    weighted = _objective(pkd_weight=1.0, weights=[3.0, 1.0], **shapes)
    s = weighted.student(student, _inputs())
    states = [o.states for o in weighted.teachers(teachers, [_inputs(), _inputs()])]
    logits = torch.zeros(4, 2)
    base = _objective().loss(s, logits, [], LABELS).item()
    alone = [_objective(pkd_weight=1.0, **shapes).loss(s, logits, [h], LABELS).item() - base for h in states]
    both = weighted.loss(s, logits, states, LABELS).item() - base
    assert both == pytest.approx(0.75 * alone[0] + 0.25 * alone[1], rel=1e-5)
