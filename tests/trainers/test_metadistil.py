"""Exactness of the MetaDistil teacher update, in float64 on tiny models: against a create_graph
reference and finite differences, without dropout and with it (the pilot's dropout mask replayed,
the quiz scored without dropout), with PKD on, and for the k-step unrolled pilot."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, jvp
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig

from trainers import rng
from trainers.batches import Batch
from trainers.losses import combine_teachers, kd_loss
from trainers.metadistil import MetaDistil
from trainers.objective import Objective, Outputs, shape_of
from trainers.pkd import cls_states
from trainers.update import StudentUpdate, TeacherUpdate

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
    from trainers.model_refs import packaged_dir
    from trainers.models import build_model

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
    from trainers.data import read_tsv

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
    from trainers.data import read_tsv
    from trainers.tasks import TASKS

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
# computation, written independently of trainers/metadistil.py: plain SGD pilot steps through
# create_graph, the quiz on the last pilot in eval mode, one backward pass into φ.

def _quiz_after_unroll(student, teachers, batches, quiz, objective, state, quiz_mode="eval"):
    """Q(θ_k(φ)) as a differentiable function of φ; dropout masks drawn from ``state`` in the
    order training draws them (the student's pilot forward passes, batch after batch)."""
    rng.set_state(state)
    fast = {n: p for n, p in student.named_parameters()}
    for batch in batches:
        out = objective.student(student, batch.student, fast)
        parts = objective.teachers(teachers, batch.teachers)
        loss = objective.loss(out, objective.combined_logits(parts), [p.states for p in parts],
                              batch.labels)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
        fast = {n: p - PILOT_LR * g for (n, p), g in zip(fast.items(), grads)}
    training = student.training
    student.train(quiz_mode == "train")
    logits = functional_call(student, fast, kwargs=quiz[0]).logits
    student.train(training)
    return torch.nn.functional.cross_entropy(logits, quiz[1])


def _reference(student, teachers, batches, quiz, objective, state, quiz_mode="eval"):
    for teacher in teachers:
        teacher.requires_grad_(True)
    q = _quiz_after_unroll(student, teachers, batches, quiz, objective, state, quiz_mode)
    params = [p for t in teachers for p in t.parameters()]
    grads = torch.autograd.grad(q, params, allow_unused=True)
    flat, start = [], 0
    for t in teachers:
        n = len(list(t.parameters()))
        flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads[start:start + n], t.parameters())]))
        start += n
    return flat


def _finite_difference(student, teachers, batches, quiz, objective, state, index, direction):
    eps, values = 1e-5, []
    for sign in (1, -1):
        shifted = copy.deepcopy(teachers)
        with torch.no_grad():
            for p, d in zip(shifted[index].parameters(), direction):
                p.add_(sign * eps * d)
        values.append(_quiz_after_unroll(student, shifted, batches, quiz, objective, state).item())
    return (values[0] - values[1]) / (2 * eps)


def _forward_mode(student, teachers, batches, quiz, objective, state, directions) -> float:
    """⟨∇φ Q(θ_k(φ)), d⟩ by another mode of differentiation: forward mode over φ (``torch.func.jvp``)
    through pilot steps whose gradients are ``torch.func.grad`` (forward-over-reverse), where the
    reference and MetaDistil differentiate the unroll backward (create_graph, or a JVP of the
    student at θ for k = 1). The same dropout masks: the generator is set to ``state`` first."""
    def teacher_outputs(index, model, params, view) -> Outputs:
        layers = objective.teacher_layers[index] if objective.pkd else []
        kwargs = {**view, "output_hidden_states": True} if layers else dict(view)
        out = functional_call(model, params, kwargs=kwargs)
        return Outputs(out.logits, cls_states(out.hidden_states, layers) if layers else None)

    def quiz_loss(*phi):
        theta = {n: p.detach() for n, p in student.named_parameters()}
        for batch in batches:
            parts = [teacher_outputs(i, m, params, view)
                     for i, (m, params, view) in enumerate(zip(teachers, phi, batch.teachers))]

            def loss(params, batch=batch, parts=parts):
                out = objective.student(student, batch.student, params)
                value = kd_loss(out.logits, objective.combined_logits(parts), batch.labels,
                                temperature=LOSS["temperature"], alpha=LOSS["alpha"])
                weights = objective.weights or [1.0] * len(parts)
                for w, part in zip(weights, parts if objective.pkd else []):
                    # PKD written out: F.mse_loss has no forward-over-reverse rule in torch 2.13
                    # ("ZeroTensors are immutable")
                    gap = _unit(out.states) - _unit(part.states)
                    value = value + objective.pkd_weight * w / sum(weights) * (gap ** 2).mean()
                return value

            step = grad(loss)(theta)
            theta = {n: p - PILOT_LR * step[n] for n, p in theta.items()}
        training = student.training
        student.eval()
        logits = functional_call(student, theta, kwargs=quiz[0]).logits
        student.train(training)
        return torch.nn.functional.cross_entropy(logits, quiz[1])

    primals = tuple({n: p.detach() for n, p in m.named_parameters()} for m in teachers)
    tangents = tuple(dict(zip(p, d)) for p, d in zip(primals, directions))
    rng.set_state(state)  # outside the transform: inside it, the state tensor has no storage
    return jvp(quiz_loss, primals, tangents)[1].item()


def _unit(states: torch.Tensor) -> torch.Tensor:
    return states / states.norm(dim=-1, keepdim=True)


def _along(gradients, directions) -> float:
    """⟨g, d⟩ over every teacher's parameters."""
    return sum(float(g @ torch.cat([x.reshape(-1) for x in d])) for g, d in zip(gradients, directions))


def _directions(teacher, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(DEVICE) for p in teacher.parameters()]


def _assert_exact(ours, reference):
    for mine, theirs in zip(ours, reference):
        assert theirs.abs().max() > 1e-6, "reference meta-gradient vanished: the test would be vacuous"
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12 * float(theirs.abs().max()))


@pytest.fixture()
def dropout_setup(setup):
    """The setup's teachers and batches, a student with dropout 0.1 everywhere, in train mode."""
    _, teachers, batch, quiz = setup
    student = _distilbert(0, layers=2, dropout=0.1).train()
    return student, teachers, batch, quiz


def test_meta_gradient_is_exact_with_dropout_on(dropout_setup):
    """As training runs: the pilot forward with dropout (its mask replayed by the JVP), the quiz
    without. A reference with another mask, or a quiz with dropout, gives another gradient."""
    student, teachers, batch, quiz = dropout_setup
    state = rng.get_state()
    ours = _meta_gradients(student, teachers, batch, quiz, state=state)
    _assert_exact(ours, _reference(student, teachers, [batch], quiz, _objective(), state))
    rng.set_state(state)
    torch.rand(10_000, device=DEVICE)  # move the generator on: the next forward draws another mask
    other_mask = _reference(student, teachers, [batch], quiz, _objective(), rng.get_state())
    noisy_quiz = _reference(student, teachers, [batch], quiz, _objective(), state, quiz_mode="train")
    for mine, a, b in zip(ours, other_mask, noisy_quiz):
        assert (mine - a).abs().max() > 1e-6 * mine.abs().max(), "another dropout mask, same gradient"
        assert (mine - b).abs().max() > 1e-6 * mine.abs().max(), "the quiz's dropout changed nothing"


@pytest.mark.parametrize("layers", ["skip", "last"])
def test_meta_gradient_is_exact_with_pkd_on(layers):
    """The mixed term runs through the matched [CLS] states as well as the logits: two teachers
    (4 and 2 layers, weighted 1:3), a 2-layer student, dropout on; against the create_graph
    reference and finite differences, and PKD visibly changes the gradient."""
    student = _distilbert(0, layers=2, dropout=0.1).train()
    teachers = [_bert(1, layers=4), _bert(2, layers=2)]
    x = _inputs(10, batch=6, length=7)
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0], device=DEVICE), x,
                  [_inputs(10, 6, 7), _inputs(11, 6, 9)])
    quiz = (_inputs(20, batch=5, length=6), torch.tensor([1, 0, 1, 1, 0], device=DEVICE))
    shapes = dict(student_shape=shape_of(student), teacher_shapes=[shape_of(t) for t in teachers])
    pkd = _objective(pkd_weight=3.0, pkd_layers=layers, weights=[1.0, 3.0], **shapes)
    assert pkd.teacher_layers == ([[2], [1]] if layers == "skip" else [[3], [1]])
    state = rng.get_state()
    ours = _meta_gradients(student, teachers, batch, quiz, objective=pkd, state=state)
    _assert_exact(ours, _reference(student, teachers, [batch], quiz, pkd, state))
    direction = _directions(teachers[0], seed=4)
    numeric = _finite_difference(student, teachers, [batch], quiz, pkd, state, 0, direction)
    analytic = float(ours[0] @ torch.cat([d.reshape(-1) for d in direction]))
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    without = _reference(student, teachers, [batch], quiz, _objective(weights=[1.0, 3.0]), state)
    assert (ours[0] - without[0]).abs().max() > 1e-3 * ours[0].abs().max(), "PKD changed nothing"


def test_unrolled_pilot_over_two_batches_is_exact(dropout_setup):
    """num_meta_batches = 2: two differentiable pilot steps, one teacher step, two real steps. The
    teachers' gradient equals the reference's, finite differences' and forward mode's; the second
    step's dependence on φ through θ_1 matters (a one-step pilot on the last batch differs)."""
    student, teachers, batch, quiz = dropout_setup
    second = Batch(np.arange(6), torch.tensor([1, 1, 0, 0, 1, 0], device=DEVICE),
                   _inputs(30, 6, 5), [_inputs(30, 6, 5), _inputs(31, 6, 8)])
    start = copy.deepcopy(student)
    step = _step(student, teachers, quiz, num_meta_batches=2)
    state = rng.get_state()
    assert step(batch) == {}, "the first batch is only buffered"
    metrics = step(second)
    assert set(metrics) == {"quiz_loss", "train_loss"} and step.meta_steps == 1
    ours = _flat_grads(teachers)
    _assert_exact(ours, _reference(start, teachers, [batch, second], quiz, _objective(), state))
    direction = _directions(teachers[1], seed=5)
    numeric = _finite_difference(start, teachers, [batch, second], quiz, _objective(), state, 1, direction)
    assert float(ours[1] @ torch.cat([d.reshape(-1) for d in direction])) == pytest.approx(
        numeric, rel=1e-5, abs=1e-9)
    one_step = _reference(start, teachers, [second], quiz, _objective(), state)
    assert (ours[0] - one_step[0]).abs().max() > 1e-3 * ours[0].abs().max()
    # The reference differentiates the unroll as MetaDistil does (create_graph, then backward), so
    # the two agree to the last bit; forward mode over φ is independent of that choice.
    directions = [_directions(t, seed=7 + i) for i, t in enumerate(teachers)]
    forward = _forward_mode(start, teachers, [batch, second], quiz, _objective(), state, directions)
    assert abs(forward) > 1e-6 and _along(ours, directions) == pytest.approx(forward, rel=1e-12)


def test_unrolled_pilot_flushes_a_short_buffer_at_the_epoch_end(dropout_setup):
    student, teachers, batch, quiz = dropout_setup
    step = _step(student, teachers, quiz, num_meta_batches=3)
    step(batch)
    assert step.meta_steps == 0
    assert set(step.finish_epoch()) == {"quiz_loss", "train_loss"}
    assert step.meta_steps == 1 and not step.buffer and step.finish_epoch() == {}
