"""The fine-tune step: it reports the cross-entropy of the batch before its update, takes one
optimizer step on that loss alone (no teacher), and repeated on one batch drives the loss down."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, BertConfig

from trainers.data.batches import Batch
from trainers.engine.update import StudentUpdate
from trainers.methods.finetune import FineTune


def _student() -> torch.nn.Module:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=2, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return AutoModelForSequenceClassification.from_config(config)


def _batch() -> Batch:
    ids = torch.randint(1, 30, (6, 5), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return Batch(rows=torch.arange(6).numpy(), labels=torch.tensor([0, 1, 0, 1, 1, 0]), student=inputs,
                 teachers=[])


def test_the_reported_loss_is_the_batchs_cross_entropy_before_the_step():
    student, batch = _student(), _batch()
    with torch.no_grad():
        before = F.cross_entropy(student(**batch.student).logits, batch.labels).item()
    weights = [p.detach().clone() for p in student.parameters()]
    step = FineTune(student, StudentUpdate(student, lr=1e-2, weight_decay=0.0, total_steps=10,
                                           warmup_ratio=0.0))
    assert step.needs_teachers is False
    reported = step(batch)
    assert reported == {"train_loss": before}
    assert any(not torch.equal(p, w) for p, w in zip(student.parameters(), weights))


def test_steps_on_one_batch_lower_its_loss():
    student, batch = _student(), _batch()
    step = FineTune(student, StudentUpdate(student, lr=1e-2, weight_decay=0.0, total_steps=30,
                                           warmup_ratio=0.0))
    losses = [step(batch)["train_loss"] for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
