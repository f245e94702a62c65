"""The teacher-logit cache's key (``trainers.engine.loop.teacher_logits_key``): each input that changes a
frozen teacher's logits on the training split changes the file, and nothing else does."""

from __future__ import annotations

import os

from tests.conftest import VOCAB
from trainers.engine.loop import teacher_logits_key
from trainers.models.build import bert_tokenizer


def test_every_input_of_the_logits_changes_the_key_and_a_call_does_not(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    tokenizer = bert_tokenizer(VOCAB)
    base = ("split-a", 64, "fp32")
    key = teacher_logits_key(weights, tokenizer, *base)
    tokenizer(["a truncating call"], truncation=True, max_length=5)  # changes no logit
    assert teacher_logits_key(weights, tokenizer, *base) == key

    lowercase_off = bert_tokenizer(VOCAB)
    lowercase_off.backend_tokenizer.normalizer.lowercase = False  # same weights, another tokenizer
    changed = [teacher_logits_key(weights, lowercase_off, *base),
               teacher_logits_key(weights, tokenizer, "split-b", 64, "fp32"),
               teacher_logits_key(weights, tokenizer, "split-a", 128, "fp32"),
               teacher_logits_key(weights, tokenizer, "split-a", 64, "bf16")]
    os.utime(weights, ns=(0, 0))  # a retrained teacher: its weights file is new
    changed.append(teacher_logits_key(weights, tokenizer, *base))
    assert len({key, *changed}) == 6
