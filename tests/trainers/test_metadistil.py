"""Exactness of the MetaDistil teacher update, in float64 on tiny models without dropout."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch.func import functional_call
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig

from trainers import rng
from trainers.batches import Batch
from trainers.losses import combine_teachers, kd_loss
from trainers.metadistil import MetaDistil
from trainers.update import StudentUpdate

VOCAB = 50
# The exactness checks also run on a GPU (the device check script sets this to "cuda").
DEVICE = torch.device(os.environ.get("METADISTIL_TEST_DEVICE", "cpu"))
LOSS = {"temperature": 2.0, "alpha": 0.7, "soft_loss": "kl"}
PILOT_LR = 0.5  # large, so the second-order term is far above finite-difference noise


def _model(config, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return model.double().to(DEVICE).eval()


def _bert(seed: int, hidden: int = 16) -> torch.nn.Module:
    return _model(BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=32, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, num_labels=2), seed)


def _distilbert(seed: int) -> torch.nn.Module:
    return _model(DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                                   dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0,
                                   num_labels=2), seed)


def _inputs(seed: int, batch: int, length: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, length - 2:] = 0  # some padding, as real batches have
    return {"input_ids": ids.to(DEVICE), "attention_mask": mask.to(DEVICE)}


@pytest.fixture()
def setup():
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


def _meta_gradients(student, teachers, batch, quiz) -> list[torch.Tensor]:
    """Teacher gradients produced by MetaDistil.teacher_step (lr=0 so they stay readable)."""
    for teacher in teachers:
        teacher.requires_grad_(True)
    update = StudentUpdate(student, lr=1e-3, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    optimizers = [torch.optim.SGD(t.parameters(), lr=0.0) for t in teachers]
    step = MetaDistil(student, update, teachers, optimizers, [[quiz]], weights=None,
                      pilot_lr=PILOT_LR, **LOSS)
    s = student(**batch.student).logits
    step.teacher_step(batch, s, rng=rng.get_state())
    return [torch.cat([p.grad.reshape(-1) for p in t.parameters()]) for t in teachers]


def test_meta_gradient_matches_second_order_autograd(setup):
    student, teachers, batch, quiz = setup
    ours = _meta_gradients(student, teachers, batch, quiz)
    for teacher in teachers:
        teacher.zero_grad(set_to_none=True)
    _quiz_after_pilot(student, teachers, batch, quiz).backward()
    reference = [torch.cat([p.grad.reshape(-1) for p in t.parameters()]) for t in teachers]
    for mine, theirs in zip(ours, reference):
        assert theirs.abs().max() > 1e-6, "reference meta-gradient vanished: the test would be vacuous"
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)


def test_meta_gradient_matches_finite_differences_and_is_nonzero_for_every_teacher(setup):
    student, teachers, batch, quiz = setup
    ours = _meta_gradients(student, teachers, batch, quiz)
    generator = torch.Generator().manual_seed(3)
    eps = 1e-5
    for index, teacher in enumerate(teachers):
        assert ours[index].abs().max() > 1e-6, f"teacher {index} got no meta-gradient"
        direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(DEVICE)
                     for p in teacher.parameters()]
        values = []
        for sign in (1, -1):
            shifted = copy.deepcopy(teachers)
            with torch.no_grad():
                for p, d in zip(shifted[index].parameters(), direction):
                    p.add_(sign * eps * d)
            values.append(_quiz_after_pilot(student, shifted, batch, quiz).item())
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = float(ours[index] @ torch.cat([d.reshape(-1) for d in direction]))
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_first_order_shortcut_gives_the_teacher_nothing(setup):
    """Why the mixed derivative matters: with the pilot gradient detached from t, ∂Q/∂φ = 0."""
    student, teachers, batch, quiz = setup
    params = dict(student.named_parameters())
    t = combine_teachers([m(**v).logits for m, v in zip(teachers, batch.teachers)])
    loss = kd_loss(student(**batch.student).logits, t, batch.labels, temperature=2.0, alpha=0.7)
    grads = torch.autograd.grad(loss, list(params.values()))  # first order: no graph kept
    pilot = {n: p - PILOT_LR * g for (n, p), g in zip(params.items(), grads)}
    q = torch.nn.functional.cross_entropy(functional_call(student, pilot, kwargs=quiz[0]).logits, quiz[1])
    assert all(
        g is None for g in torch.autograd.grad(q, list(teachers[0].parameters()), allow_unused=True))


def test_real_step_is_a_kd_step_against_the_updated_teacher(setup):
    """The pilot never touches the student: after a MetaDistil step the student equals a KD step
    taken from the same starting point against the teachers as they are after their update."""
    student, teachers, batch, quiz = setup
    twin = copy.deepcopy(student)
    for teacher in teachers:
        teacher.requires_grad_(True)
    update = StudentUpdate(student, lr=1e-2, weight_decay=0.01, total_steps=10, warmup_ratio=0.0)
    optimizers = [torch.optim.AdamW(t.parameters(), lr=1e-2) for t in teachers]
    before = [copy.deepcopy(t) for t in teachers]
    MetaDistil(student, update, teachers, optimizers, [[quiz]], weights=None, pilot_lr=PILOT_LR,
               **LOSS)(batch)
    assert any(not torch.equal(a, b) for t0, t1 in zip(before, teachers)
               for a, b in zip(t0.parameters(), t1.parameters())), "teachers did not move"
    twin_update = StudentUpdate(twin, lr=1e-2, weight_decay=0.01, total_steps=10, warmup_ratio=0.0)
    with torch.no_grad():
        t_new = combine_teachers([m(**v).logits for m, v in zip(teachers, batch.teachers)])
    twin_update.from_loss(kd_loss(twin(**batch.student).logits, t_new, batch.labels,
                                  temperature=2.0, alpha=0.7))
    for a, b in zip(student.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def pretrained_setup(tmp_path_factory):
    """The real checkpoint: all-MiniLM-L6-v2 as the teacher, its layers 0 and 5 as the student,
    on real SST-2 phrases tokenized by its own WordPiece vocabulary (float64, no dropout)."""
    from tests.conftest import SST2
    from trainers.data import read_tsv
    from trainers.model_refs import packaged_dir
    from trainers.models import build_model

    folder, cache = packaged_dir("minilm"), tmp_path_factory.mktemp("pretrained")
    built = [build_model(source, "tiny", train_texts=(), cache_dir=cache)
             for source in (f"{folder}@2", str(folder))]
    for b in built:
        b.model.set_attn_implementation("eager")
        b.model.double().to(DEVICE).eval()
    student, teacher = (b.model for b in built)
    sentences = read_tsv(SST2 / "train.tsv").sentences
    tokenizer = built[0].tokenizer

    def inputs(rows: slice) -> dict[str, torch.Tensor]:
        encoded = tokenizer(list(sentences[rows]), padding=True, truncation=True, max_length=16,
                            return_tensors="pt")
        return {"input_ids": encoded["input_ids"].to(DEVICE),
                "attention_mask": encoded["attention_mask"].to(DEVICE)}

    x = inputs(slice(0, 6))
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0], device=DEVICE), x, [x])
    quiz = (inputs(slice(6, 11)), torch.tensor([1, 0, 1, 1, 0], device=DEVICE))
    return student, [teacher], batch, quiz


def test_meta_gradient_is_exact_on_the_pretrained_checkpoint(pretrained_setup):
    """The same check as on random init, on real weights: MetaDistil's forward-mode meta-gradient
    against the create_graph reference, for all 22.7 M teacher parameters."""
    student, teachers, batch, quiz = pretrained_setup
    ours = _meta_gradients(student, teachers, batch, quiz)
    teachers[0].zero_grad(set_to_none=True)
    _quiz_after_pilot(student, teachers, batch, quiz).backward()
    reference = torch.cat([p.grad.reshape(-1) for p in teachers[0].parameters()])
    assert reference.numel() == 22_713_986 and reference.abs().max() > 1e-6
    torch.testing.assert_close(ours[0], reference, rtol=1e-9, atol=1e-12 * float(reference.abs().max()))
