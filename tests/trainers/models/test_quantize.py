"""The int8 variant (``trainers/models/quantize.py``): its Linear layers really hold int8 weights, it answers
as the fp32 model does on fixed SST-2 sentences (the tiny preset and the packaged MiniLM), it is
smaller on disk, it is saved and loaded as safetensors without changing an output, and a model it
cannot quantize is refused in one line naming it."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from tests.conftest import SST2, VOCAB
from trainers.data.glue import read_tsv
from trainers.errors import UserError
from trainers.models.build import build_model
from trainers.models.cost import size_on_disk_mb
from trainers.models.quantize import INT8_WEIGHTS, QuantizeError, int8, int8_linears, load_int8, save_int8

SENTENCES = list(read_tsv(SST2 / "test.tsv").sentences[:48])


@pytest.fixture(scope="module", params=[("bert", "tiny"), ("minilm@2", "real"), ("minilm", "real")],
                ids=["tiny-bert", "minilm@2", "minilm"])
def pair(request, tmp_path_factory):
    """(fp32 built model, its int8 variant, the fixed sentences encoded)."""
    name, size = request.param
    torch.manual_seed(0)  # the classifier head a pretrained encoder gets is drawn
    built = build_model(name, size, train_texts=(), cache_dir=tmp_path_factory.mktemp("m"),
                        vocab_file=VOCAB, num_labels=2)
    inputs = built.tokenizer(SENTENCES, padding=True, truncation=True, max_length=64, return_tensors="pt",
                             return_token_type_ids=False)
    return built, int8(built.model, name), inputs


def _probs(model: torch.nn.Module, inputs) -> torch.Tensor:
    with torch.inference_mode():
        return torch.softmax(model.eval()(**inputs).logits, dim=-1)


def test_every_linear_layer_holds_int8_weights(pair):
    built, quantized, _ = pair
    names = {n for n, m in built.model.named_modules() if type(m) is torch.nn.Linear}
    assert set(int8_linears(quantized)) == names and names
    assert not any(type(m) is torch.nn.Linear for m in quantized.modules())
    for layer in int8_linears(quantized).values():
        weight = layer.weight()
        assert weight.dtype == torch.qint8
        assert weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        assert not weight.q_per_channel_zero_points().any()  # symmetric
    # the embeddings stay fp32, and the fp32 model is left as it was
    assert quantized.base_model.embeddings.word_embeddings.weight.dtype == torch.float32
    assert any(type(m) is torch.nn.Linear for m in built.model.modules())


def test_int8_answers_as_fp32_does(pair):
    built, quantized, inputs = pair
    fp32, q = _probs(built.model, inputs), _probs(quantized, inputs)
    assert float((fp32 - q).abs().max()) < 0.02  # measured: 0.001 (tiny), 0.004 to 0.007 (MiniLM)
    # an untrained head puts many sentences within a hair of 0.5; where fp32 is decided, so is int8
    decided = (fp32[:, 1] - 0.5).abs() > 0.01
    assert (fp32.argmax(-1) == q.argmax(-1))[decided].float().mean() >= 0.95


def test_quantizing_is_deterministic(pair):
    built, quantized, _ = pair
    again = int8_linears(int8(built.model))
    for name, layer in int8_linears(quantized).items():
        assert torch.equal(layer.weight().int_repr(), again[name].weight().int_repr())


def test_int8_is_smaller_on_disk(pair):
    built, quantized, _ = pair
    assert size_on_disk_mb(quantized) < size_on_disk_mb(built.model)


def test_saved_and_loaded_it_answers_the_same(pair, tmp_path):
    built, quantized, inputs = pair
    built.model.config.save_pretrained(tmp_path)
    path = save_int8(quantized, tmp_path)
    assert path == tmp_path / INT8_WEIGHTS
    with safe_open(str(path), "pt") as saved:  # safetensors, not a pickle
        assert saved.metadata()["quantization"] == "dynamic-int8-per-channel"
        assert saved.get_tensor(next(iter(int8_linears(quantized))) + ".weight.int8").dtype == torch.int8
    loaded = load_int8(tmp_path)
    with torch.inference_mode():
        assert torch.equal(loaded(**inputs).logits, quantized(**inputs).logits)


def test_a_model_without_linear_layers_is_refused_by_name():
    with pytest.raises(QuantizeError, match="'bag-of-words' has no torch.nn.Linear layer") as caught:
        int8(torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4), torch.nn.ReLU()), "bag-of-words")
    assert isinstance(caught.value, UserError) and "\n" not in str(caught.value)
    with pytest.raises(QuantizeError, match="'Sequential' has no torch.nn.Linear"):
        int8(torch.nn.Sequential(torch.nn.ReLU()))


def test_saving_an_fp32_model_or_loading_a_folder_without_the_file_is_refused(tmp_path):
    with pytest.raises(QuantizeError, match="no int8 Linear layer; save int8"):
        save_int8(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path)
    with pytest.raises(QuantizeError, match=f"needs config.json and {INT8_WEIGHTS}"):
        load_int8(tmp_path)
