"""MetaDistil (Zhou, Xu, McAuley, ACL 2022, "BERT Learns to Teach: Knowledge Distillation with
Meta Learning"): the teachers keep learning from the student's progress on a held-out quiz set.

With student parameters θ, teacher parameters φ, student outputs o = (s, h_s)(θ) (logits and, with
PKD, [CLS] states), teacher outputs τ = (t, h_t)(φ), the objective L(o, τ, y) (``objective.py``) and
pilot step size η, one meta step over k buffered batches b_1 … b_k (``num_meta_batches``, k = 1 by
default) is:

1. pilot:    θ_0 = θ,  θ_j = θ_{j−1} − η ∇θ L(o(θ_{j−1}; b_j), τ(φ; b_j))     (plain SGD, dropout on)
2. quiz:     Q(θ_k) = CE(f_θk(x_quiz), y_quiz), the student in eval mode (no dropout), as the
             official code's ``s_prime_forward(..., is_train=False)``
3. teacher:  each teacher's optimizer steps on ∇φ Q(θ_k(φ));
4. real:     the student, untouched by the pilot, steps on each b_j against the updated teachers.

For k = 1 the teacher's gradient is the mixed second derivative

    ∇φ Q = −η (∂τ/∂φ)ᵀ · ∂²L/∂τ∂o · (∂o/∂θ) · v,    v = ∇θ′ Q(θ′),

computed without differentiating through the student's backward pass: ``u = (∂o/∂θ) v`` is one
forward-mode JVP of the student at θ replaying the dropout mask of the forward pass in (1); the rest
lives at the output level (batch × classes, and batch × layers × hidden with PKD), and one ordinary
backward pass of the teachers finishes the chain. The real step reuses the forward pass of (1).
Dropping the mixed term (first order) leaves the teacher no gradient at all.

For k > 1 the later pilot steps depend on φ through θ_1 … θ_{k−1} as well, so the unroll is
differentiated as the official code does it: ``create_graph`` through every pilot step (the student
on SDPA's math kernel, which has a double backward), then one backward of Q into φ.

``meta_every`` n > 1 is a cheaper variant, not the official method: a one-step meta update on every
n-th batch and a plain KD step (live teachers) on the others; the report names it as such.
Teachers run in eval mode (no dropout), so τ(φ) is a function of φ alone.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp

from trainers.config import TrainConfig, distillation_only
from trainers.data.batches import Batch
from trainers.engine import rng as rng_state
from trainers.engine.precision import full
from trainers.engine.update import StudentUpdate, TeacherUpdate
from trainers.methods.objective import Objective, Outputs
from trainers.methods.quiz import QUIZ_CHUNK, QuizChunk, eval_mode, quiz_chunks, quiz_gradient
from trainers.methods.registry import CostInputs, Method, Step, StepInputs, Teachers
from trainers.runtime.distributed import all_reduce_mean, world


class MetaDistil(Step):
    needs_teachers = True

    def __init__(self, student: torch.nn.Module, update: StudentUpdate,
                 teachers: Sequence[torch.nn.Module], teacher_updates: Sequence[TeacherUpdate],
                 quiz_batches: Sequence[Sequence[QuizChunk]], *, objective: Objective, pilot_lr: float,
                 meta_every: int = 1, num_meta_batches: int = 1, teacher_task_loss: bool = False) -> None:
        if meta_every > 1 and num_meta_batches > 1:
            raise ValueError("meta_every and num_meta_batches cannot both be above 1")
        if num_meta_batches > 1 and world()[1] > 1:  # its pilot would need a differentiable all-reduce
            raise ValueError("num_meta_batches > 1 runs on one worker per trial")
        self.student = student
        self.update = update
        self.teachers = list(teachers)
        self.teacher_updates = list(teacher_updates)
        self.quiz_batches = list(quiz_batches)
        self.objective = objective
        self.pilot_lr = pilot_lr
        self.meta_every = meta_every
        self.num_meta_batches = num_meta_batches
        self.teacher_task_loss = teacher_task_loss
        self.steps = 0  # training batches seen: drives meta_every and the quiz batch in turn
        self.meta_steps = 0  # teacher updates taken
        self.buffer: list[Batch] = []

    def __call__(self, batch: Batch) -> dict[str, float]:
        if self.num_meta_batches > 1:
            self.buffer.append(batch)
            self.steps += 1
            return self.finish_epoch() if len(self.buffer) == self.num_meta_batches else {}
        meta = self.steps % self.meta_every == 0
        rng = rng_state.get_state()  # the dropout mask of this forward pass is replayed by the JVP
        # Under a meta step the forward runs on the same attention kernel as the JVP: a fused GPU
        # kernel draws its attention dropout from another stream, and the replay would not match.
        with _math_attention() if meta else contextlib.nullcontext():
            student = self.objective.student(self.student, batch.student)
        metrics: dict[str, float] = {}
        if meta:
            metrics["quiz_loss"] = self.teacher_step(batch, student, rng)
        self.steps += 1
        metrics["train_loss"] = self._real_step(batch, student)
        return metrics

    def state(self) -> dict[str, int]:
        return {"distil_steps": self.steps, "meta_steps": self.meta_steps}

    def load_state(self, state: dict[str, int]) -> None:
        self.steps, self.meta_steps = state["distil_steps"], state["meta_steps"]

    def trained_teachers(self) -> list[tuple[torch.nn.Module, TeacherUpdate]]:
        return list(zip(self.teachers, self.teacher_updates))

    def finish_epoch(self) -> dict[str, float]:
        """The meta step over the buffered batches (k of them, or the epoch's last few), then
        their real steps. Nothing stays buffered across an epoch's end, so checkpoints need none."""
        if not self.buffer:
            return {}
        batches, self.buffer = self.buffer, []
        quiz_loss = self._unrolled_teacher_step(batches)
        losses = [self._real_step(b, self.objective.student(self.student, b.student)) for b in batches]
        return {"quiz_loss": quiz_loss, "train_loss": sum(losses) / len(losses)}

    def teacher_step(self, batch: Batch, student: Outputs, rng: list[torch.Tensor]) -> float:
        """Steps 1–3 for k = 1: pilot, quiz, and the teachers' meta-gradient step. Returns Q(θ')."""
        names = [n for n, p in self.student.named_parameters() if p.requires_grad]
        theta = [p for p in self.student.parameters() if p.requires_grad]
        teacher_parts = self.objective.teachers(self.teachers, batch.teachers)
        teacher = self.objective.combined_logits(teacher_parts)
        states = [part.states for part in teacher_parts]

        # (1) pilot step. The output gradients keep their dependence on τ for the mixed derivative.
        outs = [student.logits] + ([student.states] if self.objective.pkd else [])
        o = [x.detach().requires_grad_() for x in outs]
        t = teacher.detach().requires_grad_()
        h = [x.detach().requires_grad_() if x is not None else None for x in states]
        loss = self.objective.loss(Outputs(*o), t, h, batch.labels)
        grad_o = torch.autograd.grad(loss, o, create_graph=True)
        grads = list(torch.autograd.grad(outs, theta, grad_outputs=[g.detach() for g in grad_o],
                                         retain_graph=True))
        all_reduce_mean(grads)
        # θ' = θ − η·g, written into g's own memory: one parameter-sized copy, not two.
        pilot = {n: g.mul_(-self.pilot_lr).add_(p.detach()).requires_grad_()
                 for n, p, g in zip(names, theta, grads)}
        del grads

        # (2) quiz on the pilot student, v = ∇θ' Q.
        quiz_loss, v = self._quiz(pilot)
        del pilot  # θ' and the quiz graph are done with: free them before the JVP

        # (3) u = (∂o/∂θ) v by forward mode, then ∂Q/∂τ = −η ∂²L/∂τ∂o · u, then into φ.
        primal, u = self._student_jvp(names, theta, v, batch.student, rng)
        if not torch.allclose(primal[0], student.logits, rtol=1e-3, atol=1e-4):
            raise RuntimeError("MetaDistil: the JVP did not replay the forward pass (dropout masks "
                               "differ), so the meta-gradient would be wrong")
        wrt = [t] + [x for x in h if x is not None]
        mixed = sum((g * du).sum() for g, du in zip(grad_o, u))
        grad_tau = torch.autograd.grad(mixed, wrt, allow_unused=True)
        outputs = [teacher] + [x for x in states if x is not None]
        grad_outputs = [-self.pilot_lr * (g if g is not None else torch.zeros_like(w))
                        for g, w in zip(grad_tau, wrt)]
        self._teacher_update(outputs, grad_outputs, teacher_parts, batch)
        return quiz_loss

    def _unrolled_teacher_step(self, batches: Sequence[Batch]) -> float:
        """Steps 1–3 for k ≥ 1 by differentiating the unrolled pilot (official-code style)."""
        fast = {n: p for n, p in self.student.named_parameters() if p.requires_grad}
        for batch in batches:
            with _math_attention():
                student = self.objective.student(self.student, batch.student, fast)
            parts = self.objective.teachers(self.teachers, batch.teachers)
            loss = self.objective.loss(student, self.objective.combined_logits(parts),
                                       [p.states for p in parts], batch.labels)
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
            fast = {n: p - self.pilot_lr * g for (n, p), g in zip(fast.items(), grads)}
        with _math_attention():
            quiz_loss = self._quiz_loss(fast)
        self._teacher_update([quiz_loss], [torch.ones_like(quiz_loss)], parts, batches[-1])
        return quiz_loss.item()

    def _teacher_update(self, outputs: list[torch.Tensor], grad_outputs: list[torch.Tensor],
                        parts: Sequence[Outputs], batch: Batch) -> None:
        for update in self.teacher_updates:
            update.zero_grad()
        if self.teacher_task_loss:  # optional: the teachers keep learning the task (last batch)
            outputs.append(sum(F.cross_entropy(p.logits, batch.labels) for p in parts))
            grad_outputs.append(torch.ones_like(outputs[-1]))
        torch.autograd.backward(outputs, grad_outputs)
        for update in self.teacher_updates:
            update.step()
        self.meta_steps += 1

    def _quiz(self, pilot: dict[str, torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        """``(Q(θ'), ∇θ' Q)`` on this meta step's quiz batch (``trainers/methods/quiz.py``)."""
        return quiz_gradient(self.student, pilot, self._quiz_chunks())

    def _quiz_loss(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Q at ``params`` as one differentiable scalar: the size-weighted mean over the chunks."""
        chunks = self._quiz_chunks()
        total = sum(len(labels) for _, labels in chunks)
        with eval_mode(self.student):
            return sum(F.cross_entropy(full(functional_call(self.student, params, kwargs=inputs).logits),
                                       labels, reduction="sum") for inputs, labels in chunks) / total

    def _quiz_chunks(self) -> Sequence[QuizChunk]:
        return self.quiz_batches[self.meta_steps % len(self.quiz_batches)]

    def _real_step(self, batch: Batch, student: Outputs) -> float:
        """The student's step on L against the teachers as they are now; reuses ``student``'s graph."""
        with torch.no_grad():
            parts = self.objective.teachers(self.teachers, batch.teachers)
            teacher = self.objective.combined_logits(parts)
        outs = [student.logits] + ([student.states] if self.objective.pkd else [])
        o = [x.detach().requires_grad_() for x in outs]
        loss = self.objective.loss(Outputs(*o), teacher, [p.states for p in parts], batch.labels)
        self.update.from_outputs(outs, torch.autograd.grad(loss, o))
        return loss.item()

    def _student_jvp(self, names: list[str], theta: list[torch.Tensor], tangents: Sequence[torch.Tensor],
                     inputs: dict[str, torch.Tensor], rng: list[torch.Tensor]
                     ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """``(o, (∂o/∂θ)·tangents)`` at θ, with the dropout mask of the forward pass replayed."""
        def outputs(*params: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.objective.student(self.student, inputs, dict(zip(names, params)))
            return (out.logits,) + ((out.states,) if self.objective.pkd else ())

        with torch.random.fork_rng(devices=rng_state.cuda_devices()), _math_attention():
            rng_state.set_state(rng)
            return jvp(outputs, tuple(p.detach() for p in theta), tuple(tangents))


def _math_attention():
    """Forward-mode AD and double backward need SDPA's math kernel: the fused ones have neither
    rule on every device."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def meta_steps_per_epoch(config: TrainConfig, steps_per_epoch: int) -> int:
    """Teacher updates in one distillation epoch: one per meta step."""
    return math.ceil(steps_per_epoch / max(config.num_meta_batches, config.meta_every))


def _build(inputs: StepInputs) -> MetaDistil:
    """The step of a trial: each teacher gets its optimizer over the trial's meta steps, and the
    quiz is cut into batches of ``quiz_batch_size`` (the whole quiz by default), each in chunks."""
    trial, cfg = inputs.trial, inputs.trial.config
    teachers = [t.model for t in trial.teachers]
    total = meta_steps_per_epoch(cfg, inputs.steps_per_epoch) * (cfg.epochs - cfg.warmup_epochs)
    teacher_updates = [TeacherUpdate(t, lr=cfg.teacher_lr, weight_decay=cfg.teacher_weight_decay,
                                     total_steps=total, schedule=cfg.teacher_schedule,
                                     warmup_ratio=cfg.teacher_warmup_ratio,
                                     max_grad_norm=cfg.teacher_max_grad_norm)
                       for t in teachers]
    quiz = trial.splits.quiz
    encoded = trial.student.encode(quiz, cfg.data.max_length, trial.cache_dir)
    size = cfg.quiz_batch_size or len(quiz)
    # On a CPU, padding is time: short chunks. A GPU is idle at this size: one chunk, fewer launches.
    chunk = QUIZ_CHUNK if trial.device.type == "cpu" else size
    quiz_batches = [quiz_chunks(encoded, quiz.labels, np.arange(b, min(b + size, len(quiz))),
                                trial.student.tokenizer.pad_token_id, trial.device, chunk)
                    for b in range(0, len(quiz), size)]
    return MetaDistil(trial.student.model, inputs.update, teachers, teacher_updates, quiz_batches,
                      objective=Objective.of(cfg, trial.student.model, teachers),
                      pilot_lr=cfg.pilot_lr, meta_every=cfg.meta_every,
                      num_meta_batches=cfg.num_meta_batches, teacher_task_loss=cfg.teacher_task_loss)


def _cost(inputs: CostInputs) -> tuple[float, float]:
    """Per training example, with student cost S, teachers' T = Σ c(T_i), quiz q, batch b:

        a meta step            1.5·S + (2/3)(q/b)·S + (4/3)·T   (the real step, the pilot gradient
                               and the JVP; the quiz's forward and backward at θ′; each teacher's
                               forward, backward and second forward)
        between meta steps     S + T/3                          (a live-teacher KD step; meta_every)
        k-step unroll          3·S + (4/3)(q/(b·k))·S + (5/3)·T (a pilot step through create_graph
                               and a real step; the quiz's forward and double backward once per k)
    """
    cfg, student, teachers = inputs.config, inputs.student, sum(inputs.teachers)
    quiz = cfg.quiz_batch_size or cfg.data.quiz_size
    if cfg.num_meta_batches > 1:
        k = cfg.num_meta_batches
        return 3 * student + 4 / 3 * quiz / (cfg.batch_size * k) * student + 5 / 3 * teachers, 0.0
    meta = 1.5 * student + 2 / 3 * quiz / cfg.batch_size * student + 4 / 3 * teachers
    live = student + teachers / 3
    return (meta + (cfg.meta_every - 1) * live) / cfg.meta_every, 0.0


def _section(teachers: tuple[str, ...]) -> str:
    """The original work's Table 1 splits MetaDistil by the number of teachers."""
    return "MetaDistil" if len(teachers) == 1 else "MetaDistil + additional teacher"


METHOD = Method("metadistil", "MetaDistil", Teachers.TRAINABLE, _build, _cost, marker="D",
                colour="tab:red", section=_section, implied=lambda teachers: True,
                compared_with="kd", variant_key="meta_every", reads=distillation_only())
