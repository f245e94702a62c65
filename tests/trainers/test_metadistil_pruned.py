"""MetaDistil's meta-gradient is exact on a pruned student too: all-MiniLM-L6-v2 teaches its layers
0 and 5 pruned to half their heads and feed-forward neurons (``minilm@2%50``, built as a trial
builds it: importance on SST-2 training phrases), on real phrases, float64, against the textbook
create_graph reference (``tests/trainers/methods/metadistil_setup.py``)."""

from __future__ import annotations

import numpy as np
import torch

from tests.conftest import SST2
from tests.trainers.methods.metadistil_setup import DEVICE, _meta_gradients, _quiz_after_pilot
from trainers.data.batches import Batch
from trainers.data.glue import read_tsv
from trainers.models.build import build_model
from trainers.models.pruned_bert import PrunedBertForSequenceClassification
from trainers.models.refs import packaged_dir


def test_meta_gradient_is_exact_with_a_pruned_student(tmp_path):
    folder = packaged_dir("minilm")
    phrases = read_tsv(SST2 / "train.tsv")
    torch.manual_seed(0)
    student = build_model(f"{folder}@2%50", "real", train_texts=(), cache_dir=tmp_path,
                          prune_on=phrases.take(np.arange(64)), max_length=16)
    teacher = build_model(str(folder), "real", train_texts=(), cache_dir=tmp_path)
    assert isinstance(student.model, PrunedBertForSequenceClassification)
    assert student.model.config.num_attention_heads == 6 and student.model.config.intermediate_size == 768
    models = [student.model, teacher.model]
    for model in models:
        model.set_attn_implementation("eager")
        model.double().to(DEVICE).eval()

    def inputs(rows: slice) -> dict[str, torch.Tensor]:
        encoded = student.tokenizer(list(phrases.sentences[rows]), padding=True, truncation=True,
                                    max_length=16, return_tensors="pt")
        return {"input_ids": encoded["input_ids"].to(DEVICE),
                "attention_mask": encoded["attention_mask"].to(DEVICE)}

    x = inputs(slice(100, 106))
    batch = Batch(np.arange(6), torch.tensor([0, 1, 1, 0, 1, 0], device=DEVICE), x, [x])
    quiz = (inputs(slice(106, 111)), torch.tensor([1, 0, 1, 1, 0], device=DEVICE))
    ours = _meta_gradients(student.model, [teacher.model], batch, quiz)
    teacher.model.zero_grad(set_to_none=True)
    _quiz_after_pilot(student.model, [teacher.model], batch, quiz).backward()
    reference = torch.cat([p.grad.reshape(-1) for p in teacher.model.parameters()])
    assert reference.numel() == 22_713_986 and reference.abs().max() > 1e-6
    torch.testing.assert_close(ours[0], reference, rtol=1e-9, atol=1e-12 * float(reference.abs().max()))
