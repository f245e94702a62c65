"""KD's step (``trainers/methods/kd.py``) against the objective worked out by hand.

With PKD on, the teachers run live on their own views of the batch (``LiveTeachers``) and the loss
is α·T²·KL + (1 − α)·CE + β·Σ w_i/Σw · PKD_i from their logits and the [CLS] states of the matched
layers; the student steps on its gradient, the teachers stay as they are. With PKD off (and no
noise for the teachers), the loop gives KD the teachers' logits on the clean training split,
computed once and looked up by row (``CachedTeacherLogits``): the batch carries no teacher view and
no teacher runs during the step. Dropout is off throughout, so each pass is a function of its inputs.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from tests.conftest import SST2
from trainers.config import DataConfig, TrainConfig
from trainers.data.batches import Batch, TrainViews
from trainers.engine.loop import Trial, steps_of
from trainers.engine.update import StudentUpdate
from trainers.methods.kd import KD, CachedTeacherLogits, LiveTeachers
from trainers.methods.objective import Objective, shape_of

VOCAB = 60
T, ALPHA, BETA = 2.0, 0.7, 3.0
WEIGHTS = (1.0, 3.0)
# The matched layers, by hand: a 3-layer student compares its layers 1 and 2; the 6-layer teacher's
# non-final layers are 1 … 5 ("skip": every 6 // 3 = 2nd, "last": the last two), the 3-layer
# teacher's are 1 and 2 (both ways).
MATCHED = {"skip": [[2, 4], [1, 2]], "last": [[4, 5], [1, 2]]}


def _bert(seed: int, layers: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        num_labels=2)
    return AutoModelForSequenceClassification.from_config(config, attn_implementation="eager").double()


def _inputs(seed: int, batch: int, length: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, length - 2:] = 0  # some padding
    return {"input_ids": ids, "attention_mask": mask}


def _by_hand(student, teachers, batch: Batch, layers: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, its PKD part) from the models' own forward passes, with plain tensor arithmetic."""
    s_out = student(**batch.student, output_hidden_states=True)
    with torch.no_grad():
        t_outs = [t(**view, output_hidden_states=True) for t, view in zip(teachers, batch.teachers)]
    s = s_out.logits
    t = (WEIGHTS[0] * t_outs[0].logits + WEIGHTS[1] * t_outs[1].logits) / sum(WEIGHTS)
    p_t = torch.exp(t / T) / torch.exp(t / T).sum(-1, keepdim=True)
    log_p_s = s / T - torch.log(torch.exp(s / T).sum(-1, keepdim=True))
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(-1).mean()
    log_p = s - torch.log(torch.exp(s).sum(-1, keepdim=True))
    ce = -log_p[torch.arange(len(batch.labels)), batch.labels].mean()
    pkd = 0.0
    for w, out, matched in zip(WEIGHTS, t_outs, layers):
        squares = []
        for student_layer, teacher_layer in zip([1, 2], matched):
            h_s = s_out.hidden_states[student_layer][:, 0]
            h_t = out.hidden_states[teacher_layer][:, 0]
            unit_s = h_s / torch.sqrt((h_s ** 2).sum(-1, keepdim=True))
            unit_t = h_t / torch.sqrt((h_t ** 2).sum(-1, keepdim=True))
            squares.append((unit_s - unit_t) ** 2)
        pkd = pkd + w / sum(WEIGHTS) * torch.stack(squares).mean()
    return ALPHA * T ** 2 * kl + (1 - ALPHA) * ce + BETA * pkd, pkd


def _update(model) -> StudentUpdate:
    return StudentUpdate(model, lr=1e-2, weight_decay=0.01, total_steps=10, warmup_ratio=0.0)


@pytest.mark.parametrize("how", ["skip", "last"])
def test_kd_with_pkd_is_the_objective_by_hand_from_the_live_teachers(how):
    """Two teachers (6 and 3 layers, weighted 1:3) that see their own token ids, a 3-layer student:
    KD's loss is the hand-computed objective, and its step is the step on that objective's gradient."""
    student = _bert(0, layers=3)
    teachers = [_bert(1, layers=6).eval(), _bert(2, layers=3).eval()]
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0]), _inputs(10, 6, 7),
                  [_inputs(11, 6, 9), _inputs(12, 6, 5)])  # the teachers tokenize differently
    objective = Objective(temperature=T, alpha=ALPHA, soft_loss="kl", weights=WEIGHTS, pkd_weight=BETA,
                          pkd_layers=how, student_shape=shape_of(student),
                          teacher_shapes=[shape_of(t) for t in teachers])
    assert objective.teacher_layers == MATCHED[how]
    twin, before = copy.deepcopy(student), [copy.deepcopy(t) for t in teachers]
    expected, pkd = _by_hand(twin, teachers, batch, MATCHED[how])
    assert BETA * pkd > 1e-2 * expected, "PKD is a visible part of the loss: the test is not vacuous"

    kd = KD(student, _update(student), LiveTeachers(teachers, objective), objective)
    assert kd.needs_teachers
    reported = kd(batch)["train_loss"]
    assert reported == pytest.approx(expected.item(), rel=1e-12)

    _update(twin).from_loss(expected)  # the same optimizer on the hand-computed loss
    for ours, theirs in zip(student.parameters(), twin.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    for teacher, old in zip(teachers, before):  # KD's teachers are frozen
        assert all(torch.equal(a, b) for a, b in zip(teacher.parameters(), old.parameters()))
        assert all(p.grad is None for p in teacher.parameters())


def _trial(tmp_path, pkd_weight: float) -> Trial:
    data = DataConfig(source=str(SST2), train_size=48, quiz_size=8, test_size=8, max_length=32)
    config = TrainConfig(method="kd", student="distilbert", teachers=("bert", "roberta"), data=data,
                         teacher_weights=WEIGHTS, pkd_weight=pkd_weight, temperature=T, alpha=ALPHA,
                         epochs=1, batch_size=8)
    trial = Trial.build(config, cache_dir=tmp_path, device=torch.device("cpu"))
    for built in (trial.student, *trial.teachers):
        built.model.eval()  # no dropout: the live and the cached teacher logits are comparable
    return trial


def _step(trial: Trial) -> KD:
    student = trial.student.model
    _, steps = steps_of(trial, _update(student), steps_per_epoch=1)
    assert isinstance(steps, KD)
    return steps


def test_the_loop_runs_the_teachers_live_exactly_when_pkd_is_on(tmp_path):
    on, off = _step(_trial(tmp_path, pkd_weight=BETA)), _step(_trial(tmp_path, pkd_weight=0.0))
    assert isinstance(on.teacher_signal, LiveTeachers) and on.needs_teachers
    assert isinstance(off.teacher_signal, CachedTeacherLogits) and not off.needs_teachers


def test_kd_without_pkd_uses_the_cached_teacher_logits_by_row(tmp_path):
    """The cache holds each teacher's logits on the clean training split; a batch of scattered rows
    gets their weighted mean, row by row, the batch has no teacher view and no teacher runs; the loss
    is KD on those logits alone (no PKD term), equal to KD from the teachers run live on those rows."""
    trial = _trial(tmp_path, pkd_weight=0.0)
    kd = _step(trial)
    views = TrainViews(trial.splits.train, trial.student, trial.teachers, trial.config, tmp_path,
                       torch.device("cpu"))
    rows = np.array([37, 2, 19, 44, 5, 30, 11, 0])
    batch = views.batch(rows, 1, noisy=False, with_teachers=kd.needs_teachers)
    assert batch.teachers == []

    live = views.batch(rows, 1, noisy=False, with_teachers=True)
    with torch.no_grad():
        per_teacher = [t.model(**view).logits for t, view in zip(trial.teachers, live.teachers)]
        student = trial.student.model(**batch.student).logits
    teacher = (WEIGHTS[0] * per_teacher[0] + WEIGHTS[1] * per_teacher[1]) / sum(WEIGHTS)
    assert (per_teacher[0] - per_teacher[1]).abs().max() > 1e-2, "the weighting would be invisible"
    cached, states = kd.teacher_signal(batch)
    assert states == []
    torch.testing.assert_close(cached, teacher, rtol=1e-4, atol=1e-5)

    p_t, log_p_s = torch.softmax(teacher / T, -1), torch.log_softmax(student / T, -1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(-1).mean()
    ce = -torch.log_softmax(student, -1)[torch.arange(len(rows)), batch.labels].mean()
    expected = ALPHA * T ** 2 * kl + (1 - ALPHA) * ce

    calls = []
    hooks = [t.model.register_forward_hook(lambda *_: calls.append(1)) for t in trial.teachers]
    reported = kd(batch)["train_loss"]
    for hook in hooks:
        hook.remove()
    assert calls == [], "a teacher ran during a cached KD step"
    assert reported == pytest.approx(expected.item(), rel=1e-4)
