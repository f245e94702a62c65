"""The quiz of a MetaDistil meta step: ``Q(θ′)`` and ``v = ∇θ′ Q(θ′)``, one quiz chunk at a time.

    Q(θ′) = (1/N) Σ_chunks Σ_i CE(f_θ′(x_i), y_i)

with the student in eval mode (no dropout), as the official code's ``s_prime_forward(...,
is_train=False)``. A chunk's graph is freed before the next is built, so the memory is one
chunk's, and the chunks are grouped by length, so little of them is padding.

The word embedding E (vocabulary × hidden: most of a small student, 3.9 M of the tiny preset's
4.4 M parameters) gets its gradient by rows,

    ∂Q/∂E = Σ_i onehot(token_i)ᵀ · ∂Q/∂e_i,

e_i the embedding's output at token i: each chunk adds only its tokens' rows into one gradient
for the whole quiz. Autograd's embedding backward would write a dense vocabulary × hidden gradient
per chunk (a fill and an add of the whole matrix, each chunk: a fifth of a tiny pair's MetaDistil
step on a CPU). The padding token's row gets nothing, as ``nn.Embedding``'s backward gives it
nothing. The result is the same gradient (``tests/trainers/methods/test_quiz.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from trainers.data.tokens import Encoded
from trainers.engine.precision import full

# A piece of a quiz batch: the student's inputs and the labels.
QuizChunk = tuple[dict[str, torch.Tensor], torch.Tensor]
QUIZ_CHUNK = 25


def quiz_chunks(encoded: Encoded, labels: np.ndarray, rows: np.ndarray, pad_id: int,
                device: torch.device, chunk: int = QUIZ_CHUNK) -> list[QuizChunk]:
    """One quiz batch as length-sorted chunks of at most ``chunk`` examples: the same loss, a
    fraction of the padding (and so of the time and memory) of one batch padded to its longest."""
    rows = rows[np.argsort(np.diff(encoded.offsets)[rows], kind="stable")]
    return [(encoded.padded(part, pad_id, device), torch.from_numpy(labels[part]).to(device))
            for part in np.array_split(rows, math.ceil(len(rows) / chunk))]


def quiz_gradient(student: torch.nn.Module, params: dict[str, torch.Tensor],
                  chunks: Sequence[QuizChunk]) -> tuple[float, list[torch.Tensor]]:
    """``(Q(params), ∇ Q(params))``, the gradient in ``params``' order; ``params`` are the
    student's trainable parameters by name (the pilot weights θ′, or θ itself)."""
    embedding = student.get_input_embeddings()
    name = next((n for n, p in student.named_parameters() if p is embedding.weight), None)
    by_rows = name in params
    wrt = [p for n, p in params.items() if n != name or not by_rows]
    weights = {**params, name: params[name].detach()} if by_rows else params
    grad_rows = torch.zeros_like(params[name]) if by_rows else None
    total = sum(len(labels) for _, labels in chunks)
    quiz_loss, grads = 0.0, None
    with eval_mode(student), _embedding_outputs(embedding, by_rows) as outputs:
        for inputs, labels in chunks:
            outputs.clear()
            logits = full(functional_call(student, weights, kwargs=inputs).logits)
            loss = F.cross_entropy(logits, labels, reduction="sum") / total
            part = list(torch.autograd.grad(loss, wrt + outputs))
            if by_rows:
                (ids,), g = [inputs["input_ids"]], part.pop()
                grad_rows.index_add_(0, ids.reshape(-1), g.reshape(-1, g.shape[-1]))
            grads = part if grads is None else [a.add_(b) for a, b in zip(grads, part)]
            quiz_loss += loss.item()
    if by_rows and embedding.padding_idx is not None:
        grad_rows[embedding.padding_idx] = 0
    rest = iter(grads)
    return quiz_loss, [grad_rows if by_rows and n == name else next(rest) for n in params]


@contextlib.contextmanager
def _embedding_outputs(embedding: torch.nn.Module, capture: bool) -> Iterator[list[torch.Tensor]]:
    """While open, the word embedding's output of each forward pass is a leaf of the graph, held
    in the yielded list (its gradient is what ``∂Q/∂E`` is made of)."""
    outputs: list[torch.Tensor] = []

    def leaf(module, args, output):
        if outputs:
            raise RuntimeError("the student called its word embedding twice in one forward pass; "
                               "the quiz gradient takes its rows from one call")
        outputs.append(output.detach().requires_grad_())
        return outputs[-1]

    handle = embedding.register_forward_hook(leaf) if capture else None
    try:
        yield outputs
    finally:
        if handle is not None:
            handle.remove()


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The quiz scores the student without dropout, then the student's mode is restored."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)
