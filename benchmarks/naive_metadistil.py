"""The naive exact MetaDistil step, written as the official code (JetRunner/MetaDistil, nlp/) does
it: the yardstick ``bench_steps.py`` times ``trainers/methods/metadistil.py`` against, and the reference
``tests/trainers/methods/test_naive_metadistil.py`` checks it with. Not used by training.

One step on batch b, student θ, teachers φ, objective L (``trainers/methods/objective.py``), pilot step η:

1. pilot:   forward student and teachers on b (student dropout on, teachers in eval mode, both
            with graph), ``g = ∇θ L(θ, φ)`` with ``create_graph=True``, ``θ′ = θ − η g`` kept as a
            function of φ (and θ);
2. quiz:    ``Q(θ′)`` by ``functional_call`` at the pilot weights, student in eval mode;
3. teacher: ``∇φ Q`` by one ``autograd.grad`` back through the quiz, through θ′ = θ − η g(θ, φ)
            and through the double-backward graph of ``g``; the teachers' optimizers step;
4. real:    a fresh forward of the student and of the (updated) teachers on b, the student steps.

The differences from ``trainers/methods/metadistil.py`` are only in cost: here the pilot gradient keeps
its graph (the double backward through the student), the quiz's graph reaches back through θ′ into
it, and the real step runs the student forward again. The maths is the same, so with the same
random state (the same dropout mask in the pilot forward) the teachers' gradients agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call

from trainers.data.batches import Batch
from trainers.engine.precision import full
from trainers.engine.update import StudentUpdate, TeacherUpdate
from trainers.methods.metadistil import _math_attention
from trainers.methods.objective import Objective
from trainers.methods.quiz import QuizChunk, eval_mode


class NaiveMetaDistil:
    needs_teachers = True

    def __init__(self, student: torch.nn.Module, update: StudentUpdate,
                 teachers: Sequence[torch.nn.Module], teacher_updates: Sequence[TeacherUpdate],
                 quiz: Sequence[QuizChunk], *, objective: Objective, pilot_lr: float) -> None:
        self.student = student
        self.update = update
        self.teachers = list(teachers)
        self.teacher_updates = list(teacher_updates)
        self.quiz = list(quiz)
        self.objective = objective
        self.pilot_lr = pilot_lr

    def __call__(self, batch: Batch) -> dict[str, float]:
        quiz_loss = self.teacher_step(batch)
        student = self.objective.student(self.student, batch.student)  # (4) a fresh forward
        with torch.no_grad():
            parts = self.objective.teachers(self.teachers, batch.teachers)
        loss = self.objective.loss(student, self.objective.combined_logits(parts),
                                   [p.states for p in parts], batch.labels)
        self.update.from_loss(loss)
        return {"quiz_loss": quiz_loss, "train_loss": loss.item()}

    def teacher_step(self, batch: Batch) -> float:
        """Steps 1–3; leaves ∇φ Q in the teachers' ``.grad`` (after their optimizers' step)."""
        params = {n: p for n, p in self.student.named_parameters() if p.requires_grad}
        phi = [p for t in self.teachers for p in t.parameters() if p.requires_grad]
        with _math_attention():  # SDPA's fused kernels have no double backward
            student = self.objective.student(self.student, batch.student)
            parts = self.objective.teachers(self.teachers, batch.teachers)
            loss = self.objective.loss(student, self.objective.combined_logits(parts),
                                       [p.states for p in parts], batch.labels)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            pilot = {n: p - self.pilot_lr * g for (n, p), g in zip(params.items(), grads)}
            total = sum(len(labels) for _, labels in self.quiz)
            with eval_mode(self.student):
                quiz = sum(F.cross_entropy(full(functional_call(self.student, pilot, kwargs=inputs).logits),
                                           labels, reduction="sum") for inputs, labels in self.quiz) / total
            meta = torch.autograd.grad(quiz, phi, allow_unused=True)
        for update in self.teacher_updates:
            update.zero_grad()
        for p, g in zip(phi, meta):
            p.grad = g if g is not None else torch.zeros_like(p)
        for update in self.teacher_updates:
            update.step()
        return quiz.item()
