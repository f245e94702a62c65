"""Forward-only evaluation: batched by length and padded, it gives each row, in row order, what a
plain forward of that row alone gives in eval mode (no dropout), and leaves the model's mode as
it found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import VOCAB
from trainers.data.tokens import encode
from trainers.engine.evaluate import logits_of, predict
from trainers.models.build import build_model

CPU = torch.device("cpu")
SENTENCES = ["a gripping , funny film", "dull", "the plot is thin but the cast carries it all the way",
             "not good", "one of the best films of the year , and a joy", "meh", "it works"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    built = build_model("tinybert", "tiny", train_texts=(), cache_dir=tmp_path_factory.mktemp("m"),
                        vocab_file=VOCAB)
    built.model.config.hidden_dropout_prob = 0.5  # train mode would show: eval must switch it off
    for module in built.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5
    return built


def _alone(built) -> torch.Tensor:
    """Each sentence alone, unpadded, in eval mode."""
    built.model.eval()
    with torch.no_grad():
        rows = [built.model(**built.tokenizer(s, return_tensors="pt")).logits[0] for s in SENTENCES]
    return torch.stack(rows)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_predictions_are_a_plain_eval_forward_of_each_row_in_row_order(built, batch_size):
    encoded = encode(built.tokenizer, SENTENCES, max_length=32)
    expected = _alone(built)
    built.model.train()
    logits = logits_of(built.model, encoded, pad_id=built.tokenizer.pad_token_id, batch_size=batch_size,
                       device=CPU)
    assert built.model.training  # its mode restored
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
    labels, prob = predict(built.model, encoded, pad_id=built.tokenizer.pad_token_id,
                           batch_size=batch_size, device=CPU)
    assert labels.tolist() == expected.argmax(dim=-1).tolist()
    np.testing.assert_allclose(prob, torch.softmax(expected, dim=-1)[:, 1].numpy(), rtol=1e-4, atol=1e-6)
    assert ((prob > 0.5) == (labels == 1)).all()


def test_an_eval_mode_model_stays_in_eval_mode(built):
    built.model.eval()
    encoded = encode(built.tokenizer, SENTENCES[:2], max_length=32)
    logits_of(built.model, encoded, pad_id=built.tokenizer.pad_token_id, batch_size=2, device=CPU)
    assert not built.model.training
