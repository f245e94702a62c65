"""MetaDistil (Zhou, Xu, McAuley, ACL 2022, "BERT Learns to Teach: Knowledge Distillation with
Meta Learning"): the teachers keep learning from the student's progress on a held-out quiz set.

Per training batch, with student parameters θ, teacher parameters φ, student logits s = s(θ),
combined teacher logits t = t(φ), KD loss L(s, t) (``losses.kd_loss``) and pilot step size η:

1. pilot step:  θ' = θ − η ∇θ L(s(θ), t(φ))
2. quiz:        Q(θ') = CE(f_θ'(x_quiz), y_quiz)
3. teacher:     ∇φ Q = −η (∂t/∂φ)ᵀ · ∂²L/∂t∂s · (∂s/∂θ) · v,    v = ∇θ' Q(θ')
                then each teacher's optimizer steps;
4. real step:   the student, untouched by the pilot, steps on ∇θ L(s(θ), t(φ_new)).

The mixed second derivative in (3) is what makes it MetaDistil: dropping it (first order) leaves
the teacher no gradient at all. It is computed exactly, without differentiating through the
student's backward pass (no ``create_graph`` on the student, so no double backward through
attention): ``u = (∂s/∂θ) v`` is one forward-mode JVP of the student at θ, replaying the dropout
mask of the forward pass in (1); the remaining ``∂²L/∂t∂s · u`` lives at the logit level (batch ×
classes), and one ordinary backward pass of the teachers finishes the chain. The real step (4)
reuses the student forward pass of (1), whose graph is still alive. Teachers run in eval mode
(no dropout) so that t(φ) is a function of φ alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp

from trainers import rng as rng_state
from trainers.batches import Batch
from trainers.distributed import all_reduce_mean, average_gradients
from trainers.losses import combine_teachers, kd_loss
from trainers.update import StudentUpdate

# A piece of a quiz batch: the student's inputs and the labels.
QuizChunk = tuple[dict[str, torch.Tensor], torch.Tensor]


class MetaDistil:
    needs_teachers = True

    def __init__(self, student: torch.nn.Module, update: StudentUpdate,
                 teachers: Sequence[torch.nn.Module], teacher_optimizers: Sequence[torch.optim.Optimizer],
                 quiz_batches: Sequence[Sequence[QuizChunk]], *,
                 weights: Sequence[float] | None, temperature: float, alpha: float, soft_loss: str,
                 pilot_lr: float, meta_interval: int = 1, teacher_task_loss: bool = False) -> None:
        self.student = student
        self.update = update
        self.teachers = list(teachers)
        self.teacher_optimizers = list(teacher_optimizers)
        self.quiz_batches = list(quiz_batches)
        self.weights = weights
        self.loss_args = {"temperature": temperature, "alpha": alpha, "kind": soft_loss}
        self.pilot_lr = pilot_lr
        self.meta_interval = meta_interval
        self.teacher_task_loss = teacher_task_loss
        self.steps = 0  # counts calls: drives the meta interval and the quiz batch in turn

    def __call__(self, batch: Batch) -> dict[str, float]:
        meta = self.steps % self.meta_interval == 0
        rng = rng_state.get_state()  # the dropout mask of this forward pass is replayed by the JVP
        # Under a meta step the forward runs on the same attention kernel as the JVP: a fused GPU
        # kernel draws its attention dropout from another stream, and the replay would not match.
        with _math_attention() if meta else contextlib.nullcontext():
            student_logits = self.student(**batch.student).logits
        metrics: dict[str, float] = {}
        if meta:
            metrics["quiz_loss"] = self.teacher_step(batch, student_logits, rng)
        self.steps += 1
        with torch.no_grad():
            teacher = self._teacher_logits(batch)
        s = student_logits.detach().requires_grad_()
        loss = kd_loss(s, teacher, batch.labels, **self.loss_args)
        (grad_s,) = torch.autograd.grad(loss, s)
        self.update.from_logits(student_logits, grad_s)
        metrics["train_loss"] = loss.item()
        return metrics

    def teacher_step(self, batch: Batch, student_logits: torch.Tensor,
                     rng: list[torch.Tensor]) -> float:
        """Steps 1–3: pilot update, quiz, and the teachers' meta-gradient step. Returns Q(θ')."""
        names = [n for n, p in self.student.named_parameters() if p.requires_grad]
        theta = [p for p in self.student.parameters() if p.requires_grad]
        teacher_parts = [t(**inputs).logits for t, inputs in zip(self.teachers, batch.teachers)]
        teacher = combine_teachers(teacher_parts, self.weights)

        # (1) pilot step. grad_s = ∂L/∂s keeps its dependence on t for the mixed derivative.
        s = student_logits.detach().requires_grad_()
        t = teacher.detach().requires_grad_()
        (grad_s,) = torch.autograd.grad(kd_loss(s, t, batch.labels, **self.loss_args), s,
                                        create_graph=True)
        grads = list(torch.autograd.grad(student_logits, theta, grad_outputs=grad_s.detach(),
                                         retain_graph=True))
        all_reduce_mean(grads)
        # θ' = θ − η·g, written into g's own memory: one parameter-sized copy, not two.
        pilot = {n: g.mul_(-self.pilot_lr).add_(p.detach()).requires_grad_()
                 for n, p, g in zip(names, theta, grads)}
        del grads

        # (2) quiz on the pilot student, v = ∇θ' Q. The quiz batch comes in length-sorted chunks
        # (little padding); Q is their size-weighted mean, so v sums the chunks' gradients.
        chunks = self.quiz_batches[(self.steps // self.meta_interval) % len(self.quiz_batches)]
        total = sum(len(labels) for _, labels in chunks)
        quiz_loss, v = 0.0, None
        for inputs, labels in chunks:
            logits = functional_call(self.student, pilot, kwargs=inputs).logits
            loss = F.cross_entropy(logits, labels, reduction="sum") / total
            part = torch.autograd.grad(loss, list(pilot.values()))
            v = part if v is None else [a.add_(b) for a, b in zip(v, part)]
            quiz_loss += loss.item()
        del pilot  # θ' and the quiz graph are done with: free them before the JVP

        # (3) u = (∂s/∂θ) v by forward mode, then ∂Q/∂t = −η ∂²L/∂t∂s · u, then into φ.
        primal, u = self._student_jvp(names, theta, v, batch.student, rng)
        if not torch.allclose(primal, student_logits, rtol=1e-3, atol=1e-4):
            raise RuntimeError("MetaDistil: the JVP did not replay the forward pass (dropout masks "
                               "differ), so the meta-gradient would be wrong")
        (grad_t,) = torch.autograd.grad((grad_s * u).sum(), t)
        for optimizer in self.teacher_optimizers:
            optimizer.zero_grad(set_to_none=True)
        outputs, grad_outputs = [teacher], [-self.pilot_lr * grad_t]
        if self.teacher_task_loss:  # optional: the teachers also keep learning the task itself
            outputs.append(sum(F.cross_entropy(z, batch.labels) for z in teacher_parts))
            grad_outputs.append(torch.ones_like(outputs[-1]))
        torch.autograd.backward(outputs, grad_outputs)
        for model, optimizer in zip(self.teachers, self.teacher_optimizers):
            average_gradients(list(model.parameters()))
            optimizer.step()
        return quiz_loss

    def _student_jvp(self, names: list[str], theta: list[torch.Tensor], tangents: Sequence[torch.Tensor],
                     inputs: dict[str, torch.Tensor], rng: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s, (∂s/∂θ)·tangents)`` at θ, with the dropout mask of the forward pass replayed."""
        def logits(*params: torch.Tensor) -> torch.Tensor:
            return functional_call(self.student, dict(zip(names, params)), kwargs=inputs).logits

        with torch.random.fork_rng(devices=rng_state.cuda_devices()), _math_attention():
            rng_state.set_state(rng)
            return jvp(logits, tuple(p.detach() for p in theta), tuple(tangents))

    def _teacher_logits(self, batch: Batch) -> torch.Tensor:
        return combine_teachers([t(**inputs).logits for t, inputs in zip(self.teachers, batch.teachers)],
                                self.weights)


def _math_attention():
    """Forward-mode AD needs SDPA's math kernel; the fused ones have no JVP rule on every device."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)
