"""Exactness of the MetaDistil teacher update, in float64 on tiny models, without dropout: against
a create_graph reference and finite differences, and on the pretrained checkpoint (one sentence and pairs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call

from tests.trainers.methods.metadistil_setup import (
    DEVICE,
    PILOT_LR,
    _meta_gradients,
    _objective,
    _quiz_after_pilot,
    make_setup,
)
from trainers.data.batches import Batch
from trainers.engine.update import StudentUpdate, TeacherUpdate
from trainers.methods.losses import combine_teachers, kd_loss
from trainers.methods.metadistil import MetaDistil


@pytest.fixture()
def setup():
    """Two tiny BERT teachers, a tiny DistilBERT student, a batch and a quiz (float64)."""
    return make_setup()


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
    teacher_updates = [TeacherUpdate(t, lr=1e-2, weight_decay=0.0, total_steps=10) for t in teachers]
    before = [copy.deepcopy(t) for t in teachers]
    MetaDistil(student, update, teachers, teacher_updates, [[quiz]], objective=_objective(),
               pilot_lr=PILOT_LR)(batch)
    assert any(not torch.equal(a, b) for t0, t1 in zip(before, teachers)
               for a, b in zip(t0.parameters(), t1.parameters())), "teachers did not move"
    twin_update = StudentUpdate(twin, lr=1e-2, weight_decay=0.01, total_steps=10, warmup_ratio=0.0)
    with torch.no_grad():
        t_new = combine_teachers([m(**v).logits for m, v in zip(teachers, batch.teachers)])
    twin_update.from_loss(kd_loss(twin(**batch.student).logits, t_new, batch.labels,
                                  temperature=2.0, alpha=0.7))
    for a, b in zip(student.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _minilm_pair(cache):
    """all-MiniLM-L6-v2 as the teacher and its layers 0 and 5 as the student, float64, eval mode
    (no dropout), eager attention; and the two as built (the student's first: its tokenizer)."""
    from trainers.models.build import build_model
    from trainers.models.refs import packaged_dir

    folder = packaged_dir("minilm")
    built = [build_model(source, "tiny", train_texts=(), cache_dir=cache)
             for source in (f"{folder}@2", str(folder))]
    for b in built:
        b.model.set_attn_implementation("eager")
        b.model.double().to(DEVICE).eval()
    return built[0].model, built[1].model, built


@pytest.fixture(scope="module")
def pretrained_setup(tmp_path_factory):
    """The real checkpoint: all-MiniLM-L6-v2 as the teacher, its layers 0 and 5 as the student,
    on real SST-2 phrases tokenized by its own WordPiece vocabulary (float64, no dropout)."""
    from tests.conftest import SST2
    from trainers.data.glue import read_tsv

    student, teacher, built = _minilm_pair(tmp_path_factory.mktemp("pretrained"))
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


@pytest.fixture(scope="module")
def pretrained_pair_setup(tmp_path_factory):
    """The same checkpoint on real MRPC sentence pairs, through the project's own pair encoding
    (``[CLS] a [SEP] b [SEP]`` with segment ids 0/1, ``Built.encode``)."""
    from tests.conftest import MRPC
    from trainers.data.glue import read_tsv
    from trainers.data.tasks import TASKS

    cache = tmp_path_factory.mktemp("pretrained-pairs")
    student, teacher, built = _minilm_pair(cache)
    encoded = built[0].encode(read_tsv(MRPC / "train.tsv", TASKS["mrpc"]).take(np.arange(11)), 24, cache)
    pad_id = built[0].tokenizer.pad_token_id
    x = encoded.padded(np.arange(6), pad_id, DEVICE)
    assert set(x["token_type_ids"].unique().tolist()) == {0, 1}
    batch = Batch(np.arange(6), torch.tensor([1, 0, 1, 0, 1, 1], device=DEVICE), x, [x])
    quiz = (encoded.padded(np.arange(6, 11), pad_id, DEVICE), torch.tensor([1, 0, 1, 1, 0], device=DEVICE))
    return student, [teacher], batch, quiz


@pytest.mark.parametrize("setup_name", ["pretrained_setup", "pretrained_pair_setup"])
def test_meta_gradient_is_exact_on_the_pretrained_checkpoint(request, setup_name):
    """The same check as on random init, on real weights: MetaDistil's forward-mode meta-gradient
    against the create_graph reference, for all 22.7 M teacher parameters; on single sentences
    and on sentence pairs (segment ids in the student's, the teacher's and the quiz's inputs)."""
    student, teachers, batch, quiz = request.getfixturevalue(setup_name)
    ours = _meta_gradients(student, teachers, batch, quiz)
    teachers[0].zero_grad(set_to_none=True)
    _quiz_after_pilot(student, teachers, batch, quiz).backward()
    reference = torch.cat([p.grad.reshape(-1) for p in teachers[0].parameters()])
    assert reference.numel() == 22_713_986 and reference.abs().max() > 1e-6
    torch.testing.assert_close(ours[0], reference, rtol=1e-9, atol=1e-12 * float(reference.abs().max()))


# With dropout on, PKD on, and the k-step unrolled pilot. The reference below is the textbook
# computation, written independently of trainers/methods/metadistil.py: plain SGD pilot steps through
# create_graph, the quiz on the last pilot in eval mode, one backward pass into φ.

