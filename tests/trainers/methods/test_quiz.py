"""The quiz gradient by embedding rows equals autograd's dense gradient of the whole quiz, in
float64: several chunks, repeated tokens, padding tokens (whose row gets nothing), for BERT and
DistilBERT, at pilot weights that differ from the module's own, and with a frozen embedding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig

from trainers.methods.quiz import quiz_gradient

VOCAB = 40
PAD = 0


def _student(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = (BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=32, pad_token_id=PAD, num_labels=2) if kind == "bert" else
              DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                               pad_token_id=PAD, num_labels=2))
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return model.double().train()  # train mode: the quiz must switch dropout off itself


def _chunks() -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    chunks = []
    for batch, length in ((3, 5), (4, 9), (2, 12)):
        ids = torch.randint(1, 8, (batch, length), generator=generator)  # few tokens: many repeats
        mask = torch.ones_like(ids)
        ids[0, length - 2:], mask[0, length - 2:] = PAD, 0
        chunks.append(({"input_ids": ids, "attention_mask": mask},
                       torch.randint(0, 2, (batch,), generator=generator)))
    return chunks


def _pilot(student: torch.nn.Module) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    return {n: (p.detach() + 0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype)).requires_grad_()
            for n, p in student.named_parameters() if p.requires_grad}


def _dense(student, params, chunks) -> tuple[float, list[torch.Tensor]]:
    """The reference: one loss over every chunk, autograd's gradient of it (dense embedding)."""
    total = sum(len(labels) for _, labels in chunks)
    student.eval()
    loss = sum(F.cross_entropy(functional_call(student, params, kwargs=inputs).logits, labels,
                               reduction="sum") for inputs, labels in chunks) / total
    student.train()
    return loss.item(), list(torch.autograd.grad(loss, list(params.values())))


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("frozen_embedding", [False, True])
def test_quiz_gradient_by_rows_is_autograds_dense_gradient(kind, frozen_embedding):
    student = _student(kind)
    student.get_input_embeddings().weight.requires_grad_(not frozen_embedding)
    params, chunks = _pilot(student), _chunks()
    loss, grads = quiz_gradient(student, params, chunks)
    expected_loss, expected = _dense(student, params, chunks)
    assert student.training  # its mode restored
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert len(grads) == len(expected) == len(params)
    for name, got, want in zip(params, grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-13, msg=name)
    if not frozen_embedding:
        rows = grads[list(params).index(next(n for n in params if "word_embeddings" in n))]
        assert rows[PAD].abs().max() == 0 and rows[1:8].abs().sum(dim=1).min() > 0
        assert rows[8:].abs().max() == 0  # tokens no chunk holds
