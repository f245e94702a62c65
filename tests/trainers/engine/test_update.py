"""The optimizer steps: no weight decay on biases and LayerNorm, the teacher's schedule and clipping."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, DistilBertConfig

from trainers.engine.update import StudentUpdate, TeacherUpdate, parameter_groups


def _distilbert() -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(
        DistilBertConfig(vocab_size=30, dim=8, n_layers=1, n_heads=2, hidden_dim=16, num_labels=2))


def test_biases_and_layer_norms_are_never_decayed():
    """By module type: DistilBERT's sa_layer_norm and output_layer_norm count, which the official
    code's name list ('LayerNorm.weight') would miss."""
    model = _distilbert()
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    undecayed = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert "distilbert.transformer.layer.0.sa_layer_norm.weight" in undecayed
    assert "distilbert.embeddings.LayerNorm.weight" in undecayed
    assert all(n.endswith("bias") or "norm" in n.lower() for n in undecayed)
    assert "distilbert.embeddings.word_embeddings.weight" not in undecayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(("schedule", "expected"), [("linear", [1.0, 0.75, 0.5, 0.25, 0.0]),
                                                    ("constant", [1.0] * 5)])
def test_teacher_rate_follows_its_schedule_over_its_own_steps(schedule, expected):
    model = _distilbert()
    update = TeacherUpdate(model, lr=1e-3, weight_decay=0.0, total_steps=4, schedule=schedule)
    rates = []
    for _ in range(5):
        rates.append(update.optimizer.param_groups[0]["lr"] / 1e-3)
        update.zero_grad()
        model(input_ids=torch.tensor([[1, 2, 3]])).logits.sum().backward()
        update.step()
    assert rates == pytest.approx(expected)


def test_teacher_gradient_is_clipped_to_its_norm():
    model = _distilbert()
    update = TeacherUpdate(model, lr=1e-3, weight_decay=0.0, total_steps=4, max_grad_norm=0.5)
    update.zero_grad()
    (1e3 * model(input_ids=torch.tensor([[1, 2, 3]])).logits.sum()).backward()
    update.step()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                 if p.grad is not None]))
    assert norm.item() == pytest.approx(0.5, rel=1e-5)


def test_student_warms_up_then_decays():
    model = _distilbert()
    update = StudentUpdate(model, lr=1.0, weight_decay=0.0, total_steps=10, warmup_ratio=0.2)
    rates = []
    for _ in range(10):
        rates.append(update.optimizer.param_groups[0]["lr"])
        update.from_loss(model(input_ids=torch.tensor([[1, 2]])).logits.sum())
    assert rates[:3] == pytest.approx([0.0, 0.5, 1.0]) and rates[-1] == pytest.approx(0.125)
