"""Pruned students (``trainers/models/prune.py``, ``trainers/models/pruned_bert.py``): the ``%`` suffix,
Michel et al.'s importance against finite differences, removal that equals masking, exact parameter
counts of a half-pruned MiniLM that ``from_pretrained`` reloads, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tests.conftest import SST2, VOCAB
from trainers.data.glue import Examples, read_tsv
from trainers.models import prune
from trainers.models.build import architecture, build_model, config_parameters, count_parameters
from trainers.models.pruned_bert import PrunedBertForSequenceClassification
from trainers.models.refs import ModelError, ModelRef, kept_count, packaged_dir

MINILM_PARAMS = 22_713_986  # tests/trainers/models/test_refs.py: all-MiniLM-L6-v2, 2-class head


@pytest.fixture(scope="module")
def phrases() -> Examples:
    return read_tsv(SST2 / "train.tsv").take(np.arange(48))


def _tiny(cache: Path, spec: str = "bert", prune_on: Examples | None = None, seed: int = 0):
    torch.manual_seed(seed)
    built = build_model(spec, "tiny", train_texts=(), cache_dir=cache, vocab_file=VOCAB, seed=seed,
                        prune_on=prune_on, max_length=32)
    return built


@pytest.mark.parametrize("text, ref", [
    ("minilm%50", ModelRef("minilm", None, (50.0, 50.0))),
    ("minilm@2%50", ModelRef("minilm", 2, (50.0, 50.0))),
    ("minilm@0_5%50_25", ModelRef("minilm", (0, 5), (50.0, 25.0))),
    ("minilm%37.5_100", ModelRef("minilm", None, (37.5, 100.0))),
    ("org/name%100", ModelRef("org/name", None, (100.0, 100.0))),
    ("/home/me%corp/model", ModelRef("/home/me%corp/model")),
])
def test_pruned_references_parse_and_print_back(text, ref):
    assert ModelRef.parse(text) == ref
    assert ref.with_base(ref.base) == text


@pytest.mark.parametrize("text, said", [
    ("minilm%0", "kept fraction of 0); the kept fraction must be in (0, 1]"),
    ("minilm%150", "kept fraction of 1.5); the kept fraction must be in (0, 1]"),
    ("minilm%50_0", "kept fraction of 0)"),
    ("minilm%", "after '%' write the percent"), ("minilm%half", "after '%' write the percent"),
    ("minilm%50@2", "a layer cut goes before it (minilm@2%50)"), ("%50", "after '%' write the percent"),
])
def test_bad_pruning_suffixes_are_refused_in_one_line(text, said):
    with pytest.raises(ModelError) as raised:
        ModelRef.parse(text)
    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_kept_counts_round_and_never_prune_a_whole_layer():
    assert [kept_count(p, 12, "heads", "m") for p in (50, 40, 4.2, 100)] == [6, 5, 1, 12]
    assert kept_count(50, 1536, "neurons", "m") == 768
    with pytest.raises(ModelError, match="keeps none: it would prune all 2 heads a layer has"):
        kept_count(10, 2, "heads", "bert%10")


def test_importance_is_michels_per_example_gradient(tmp_path, phrases):
    """E_x |∂L(x)/∂ξ| from :func:`prune.importance` (batched, gates per example) against central
    finite differences of each example's own loss, one example at a time, float64."""
    built = _tiny(tmp_path)
    model = built.model.double().eval()
    encoded = built.encode(phrases, 32, tmp_path)
    labels = np.asarray(phrases.labels)
    heads, neurons = prune.importance(model, encoded, labels, pad_id=0, seed=3, examples=5, batch_size=2)
    rows = np.random.default_rng(3).permutation(len(encoded))[:5]
    head_size = model.config.hidden_size // model.config.num_attention_heads
    layers = model.bert.encoder.layer

    def loss(row: int, module: torch.nn.Module, units: slice, scale: float) -> float:
        def hook(mod, args, output):
            first = output[0] if isinstance(output, tuple) else output
            scaled = first.clone()
            scaled[..., units] *= scale
            return (scaled, *output[1:]) if isinstance(output, tuple) else scaled
        handle = module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                logits = model(**encoded.padded([row], 0, torch.device("cpu"))).logits
        finally:
            handle.remove()
        return float(torch.nn.functional.cross_entropy(logits, torch.tensor(labels[[row]])))

    def expected(module, units) -> float:
        eps = 1e-6
        slopes = [(loss(r, module, units, 1 + eps) - loss(r, module, units, 1 - eps)) / (2 * eps)
                  for r in rows]
        return float(np.mean(np.abs(slopes)))

    for index, layer in enumerate(layers):
        for head in range(model.config.num_attention_heads):
            units = slice(head * head_size, (head + 1) * head_size)
            assert heads[index, head].item() == pytest.approx(expected(layer.attention.self, units), rel=1e-5)
        for neuron in (0, 101, 511):
            assert neurons[index, neuron].item() == pytest.approx(
                expected(layer.intermediate, slice(neuron, neuron + 1)), rel=1e-5, abs=1e-12)
    assert heads.shape == (4, 2) and neurons.shape == (4, 512) and heads.min() > 0


def test_removing_units_computes_what_masking_them_computes(tmp_path, phrases):
    """The pruned model's logits equal the original's with the removed heads' outputs and neurons'
    activations set to zero (float64): the weights of exactly those units went, nothing else."""
    model = _tiny(tmp_path).model.double().eval()
    heads = [[1], [0], [0], [1]]
    neurons = [sorted(np.random.default_rng(i).permutation(512)[:200].tolist()) for i in range(4)]
    config = prune.pruned_config(model.config, (50, 200 / 512 * 100), "bert")
    assert config.intermediate_size == 200
    pruned = prune.remove(model, heads, neurons, config).eval()
    head_size = 64
    masks = []
    for layer, kept_heads, kept_neurons in zip(model.bert.encoder.layer, heads, neurons):
        head_mask = torch.zeros(128, dtype=torch.float64)
        for h in kept_heads:
            head_mask[h * head_size:(h + 1) * head_size] = 1
        neuron_mask = torch.zeros(512, dtype=torch.float64)
        neuron_mask[kept_neurons] = 1
        masks.append(layer.attention.self.register_forward_hook(
            lambda m, a, out, mask=head_mask: (out[0] * mask, *out[1:])))
        masks.append(layer.intermediate.register_forward_hook(lambda m, a, out, mask=neuron_mask: out * mask))
    inputs = build_model("bert", "tiny", train_texts=(), cache_dir=tmp_path, vocab_file=VOCAB).encode(
        phrases, 32, tmp_path).padded(np.arange(8), 0, torch.device("cpu"))
    with torch.no_grad():
        masked = model(**inputs).logits
        ours = pruned(**inputs).logits
    for handle in masks:
        handle.remove()
    with torch.no_grad():
        whole = model(**inputs).logits
    torch.testing.assert_close(ours, masked, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ours, whole)  # the pruning changed something: the test can fail
    assert count_parameters(pruned) == config_parameters(config)


def test_pruning_is_seeded_and_recorded(tmp_path, phrases):
    first, second = (_tiny(tmp_path, "bert%50_25", phrases, seed=5) for _ in range(2))
    record = first.model.config.pruning
    assert record == second.model.config.pruning
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert record["score"] == prune.SCORE and record["examples"] == len(phrases) and record["seed"] == 5
    assert [len(h) for h in record["heads"]] == [1] * 4 and [len(n) for n in record["neurons"]] == [128] * 4
    assert all(n == sorted(set(n)) for n in record["neurons"])
    for layer, kept in enumerate(record["heads"]):  # each layer kept its more important head
        scores = record["head_scores"][layer]
        assert scores[kept[0]] >= max(scores)
    assert prune.summary(record) == {
        "student_pruned": f"1/2 heads, 128/512 neurons in each of 4 layers ({prune.SCORE}, 48 examples)",
        "student_kept_heads": " ".join(f"{i}:{h[0]}" for i, h in enumerate(record["heads"]))}


@pytest.fixture(scope="module")
def half_minilm(tmp_path_factory, phrases):
    cache = tmp_path_factory.mktemp("half-minilm")
    torch.manual_seed(0)
    built = build_model(f"{packaged_dir('minilm')}%50", "real", train_texts=(), cache_dir=cache,
                        prune_on=phrases, max_length=32)
    return built, cache


def test_half_pruned_minilm_has_exact_counts_and_reloads_with_from_pretrained(half_minilm):
    built, cache = half_minilm
    model = built.model.eval()
    # Per layer: Q, K, V lose 6 heads × 32 rows and their biases, the attention output 192 columns,
    # the first FFN layer 768 rows and biases, the second 768 columns.
    removed = 6 * (3 * (192 * 384 + 192) + 192 * 384 + (768 * 384 + 768) + 768 * 384)
    assert count_parameters(model) == MINILM_PARAMS - removed == 17_397_506
    assert config_parameters(architecture(f"{packaged_dir('minilm')}%50", "real")) == count_parameters(model)
    assert isinstance(model, PrunedBertForSequenceClassification)
    folder = cache / "saved"
    model.save_pretrained(folder)
    built.tokenizer.save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["num_attention_heads"] == 6 and saved["attention_head_size"] == 32
    assert saved["intermediate_size"] == 768 and len(saved["pruning"]["heads"]) == 6
    assert all(len(h) == 6 for h in saved["pruning"]["heads"])
    assert all(len(n) == 768 for n in saved["pruning"]["neurons"])
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True,
                                                                  use_safetensors=True).eval()
    assert type(reloaded) is PrunedBertForSequenceClassification
    assert count_parameters(reloaded) == count_parameters(model)
    inputs = built.tokenizer(["a gripping film", "dull and long"], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    again = build_model(str(folder), "real", train_texts=(), cache_dir=cache)  # as a trial's folder loads
    assert count_parameters(again.model) == count_parameters(model)


def test_a_cut_then_a_pruning(tmp_path, phrases):
    torch.manual_seed(0)
    built = build_model(f"{packaged_dir('minilm')}@2%50_100", "real", train_texts=(), cache_dir=tmp_path,
                        prune_on=phrases.take(np.arange(8)), max_length=16)
    config = built.model.config
    assert config.kept_layers == [0, 5] and config.num_hidden_layers == 2
    assert config.num_attention_heads == 6 and config.intermediate_size == 1536
    removed = 2 * (3 * (192 * 384 + 192) + 192 * 384)
    assert count_parameters(built.model) == 15_616_130 - removed


def test_what_cannot_be_pruned_is_refused_in_one_line(tmp_path, phrases):
    with pytest.raises(ModelError, match=r"10 % of 2 heads keeps none: it would prune all 2 heads"):
        architecture("bert%10", "tiny")
    with pytest.raises(ModelError, match="heads and neurons of BERT models .* not distilbert"):
        architecture("distilbert%50", "tiny")
    with pytest.raises(ModelError, match="pass prune_on"):
        _tiny(tmp_path, "bert%50")
