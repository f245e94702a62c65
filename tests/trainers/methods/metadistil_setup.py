"""The tiny float64 models, batches and MetaDistil steps the exactness tests share."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.func import functional_call
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig

from trainers.data.batches import Batch
from trainers.engine import rng
from trainers.engine.update import StudentUpdate, TeacherUpdate
from trainers.methods.losses import combine_teachers, kd_loss
from trainers.methods.metadistil import MetaDistil
from trainers.methods.objective import Objective

VOCAB = 50
# The exactness checks also run on a GPU (the device check script sets this to "cuda").
DEVICE = torch.device(os.environ.get("METADISTIL_TEST_DEVICE", "cpu"))
LOSS = {"temperature": 2.0, "alpha": 0.7, "soft_loss": "kl"}
PILOT_LR = 0.5  # large, so the second-order term is far above finite-difference noise


def _model(config, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return model.double().to(DEVICE).eval()


def _bert(seed: int, hidden: int = 16, layers: int = 2) -> torch.nn.Module:
    return _model(BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=2, intermediate_size=32, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, num_labels=2), seed)


def _distilbert(seed: int, layers: int = 1, dropout: float = 0.0) -> torch.nn.Module:
    return _model(DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=layers, n_heads=2, hidden_dim=32,
                                   dropout=dropout, attention_dropout=dropout,
                                   seq_classif_dropout=dropout, num_labels=2), seed)


def _inputs(seed: int, batch: int, length: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, length - 2:] = 0  # some padding, as real batches have
    return {"input_ids": ids.to(DEVICE), "attention_mask": mask.to(DEVICE)}


def make_setup():
    student = _distilbert(0)
    teachers = [_bert(1), _bert(2, hidden=24)]
    x = _inputs(10, batch=6, length=7)
    labels = torch.tensor([0, 1, 1, 0, 1, 0], device=DEVICE)
    teacher_views = [_inputs(10, 6, 7), _inputs(11, 6, 9)]  # teachers tokenize differently
    batch = Batch(np.arange(6), labels, x, teacher_views)
    quiz = (_inputs(20, batch=5, length=6), torch.tensor([1, 0, 1, 1, 0], device=DEVICE))
    return student, teachers, batch, quiz


def _quiz_after_pilot(student, teachers, batch, quiz) -> torch.Tensor:
    """Q(θ − η ∇θ L(θ, t(φ))) as one differentiable function of φ (the textbook computation)."""
    params = dict(student.named_parameters())
    t = combine_teachers([m(**v).logits for m, v in zip(teachers, batch.teachers)])
    s = student(**batch.student).logits
    loss = kd_loss(s, t, batch.labels, temperature=LOSS["temperature"], alpha=LOSS["alpha"])
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    pilot = {n: p - PILOT_LR * g for (n, p), g in zip(params.items(), grads)}
    logits = functional_call(student, pilot, kwargs=quiz[0]).logits
    return torch.nn.functional.cross_entropy(logits, quiz[1])


def _objective(**extra) -> Objective:
    return Objective(**LOSS, **extra)


def _readable_updates(teachers) -> list[TeacherUpdate]:
    """Teacher updates that leave the meta-gradient readable in ``.grad``: no clipping, and a rate
    so small that the step does not move the teachers measurably."""
    return [TeacherUpdate(t, lr=1e-300, weight_decay=0.0, total_steps=10, max_grad_norm=0.0)
            for t in teachers]


def _step(student, teachers, quiz, objective=None, **kwargs) -> MetaDistil:
    for teacher in teachers:
        teacher.requires_grad_(True)
    update = StudentUpdate(student, lr=1e-3, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    return MetaDistil(student, update, teachers, _readable_updates(teachers), [[quiz]],
                      objective=objective or _objective(), pilot_lr=PILOT_LR, **kwargs)


def _flat_grads(teachers) -> list[torch.Tensor]:
    return [torch.cat([p.grad.reshape(-1) for p in t.parameters()]) for t in teachers]


def _meta_gradients(student, teachers, batch, quiz, objective=None, state=None) -> list[torch.Tensor]:
    """Teacher gradients produced by MetaDistil.teacher_step (the JVP path, k = 1); the student's
    forward pass draws its dropout mask from the random ``state`` when given."""
    step = _step(student, teachers, quiz, objective)
    if state is not None:
        rng.set_state(state)
    state = rng.get_state()
    out = step.objective.student(student, batch.student)
    step.teacher_step(batch, out, rng=state)
    return _flat_grads(teachers)


