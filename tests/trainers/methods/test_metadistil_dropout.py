"""Exactness of the MetaDistil teacher update with dropout on (the pilot's dropout mask replayed, the
quiz scored without dropout), with PKD on, and for the k-step unrolled pilot: against a create_graph
reference, finite differences and forward mode."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, jvp

from tests.trainers.methods.metadistil_setup import (
    DEVICE,
    LOSS,
    PILOT_LR,
    _bert,
    _distilbert,
    _flat_grads,
    _inputs,
    _meta_gradients,
    _objective,
    _step,
    make_setup,
)
from trainers.data.batches import Batch
from trainers.engine import rng
from trainers.methods.losses import kd_loss
from trainers.methods.objective import Outputs, shape_of
from trainers.methods.pkd import cls_states


@pytest.fixture()
def setup():
    """Two tiny BERT teachers, a tiny DistilBERT student, a batch and a quiz (float64)."""
    return make_setup()


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
