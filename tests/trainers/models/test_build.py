"""Registry, presets and tokenizers: exact parameter counts, real vocabularies, clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.conftest import SST2, VOCAB
from trainers.data.glue import read_tsv
from trainers.models.build import (
    ModelError,
    bert_tokenizer,
    bpe_tokenizer,
    build_model,
    config_parameters,
    count_parameters,
    reference_config,
)
from trainers.models.refs import PRESETS

PAPER_COUNTS = {"bert": 109_483_778, "roberta": 124_647_170, "distilbert": 66_955_010,
                "tinybert": 14_350_874}


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_real_architectures_reproduce_the_papers_parameter_counts(name):
    assert config_parameters(reference_config(name)) == PAPER_COUNTS[name]


@pytest.fixture(scope="module")
def texts():
    return read_tsv(SST2 / "train.tsv").sentences[:3000]


@pytest.fixture(scope="module")
def presets(texts, tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    return {n: build_model(n, "tiny", train_texts=texts, cache_dir=cache, vocab_file=VOCAB) for n in PRESETS}


def test_presets_keep_the_real_ordering_of_sizes(presets):
    counts = {n: count_parameters(b.model) for n, b in presets.items()}
    assert counts["roberta"] > counts["bert"] > counts["distilbert"] > counts["tinybert"]
    assert counts == {"bert": 4_782_722, "roberta": 4_972_034, "distilbert": 4_385_922,
                      "tinybert": 2_090_690}


def test_bert_vocab_is_the_real_one():
    tokenizer = bert_tokenizer(VOCAB)
    assert tokenizer.vocab_size == 30_522
    assert tokenizer("hide new secretions from the parental units")["input_ids"] == [
        101, 5342, 2047, 3595, 8496, 2013, 1996, 18643, 3197, 102]


def test_roberta_preset_tokenizes_differently_and_is_cached(presets, texts, tmp_path):
    sentence = "a gorgeously elaborate continuation"
    bert_ids = presets["bert"].tokenizer(sentence)["input_ids"]
    roberta_ids = presets["roberta"].tokenizer(sentence)["input_ids"]
    assert roberta_ids[0] == 0 and roberta_ids[-1] == 2 and roberta_ids != bert_ids
    first = bpe_tokenizer(texts, tmp_path)
    assert bpe_tokenizer(texts, tmp_path)(sentence)["input_ids"] == first(sentence)["input_ids"]


def test_init_is_seeded(texts, tmp_path):
    a = build_model("tinybert", "tiny", train_texts=texts, cache_dir=tmp_path, vocab_file=VOCAB, seed=1)
    b = build_model("tinybert", "tiny", train_texts=texts, cache_dir=tmp_path, vocab_file=VOCAB, seed=1)
    assert all((p == q).all() for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_offline_hub_fails_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Read once, when huggingface_hub is first imported: a test before this one may have loaded it,
    # and then only the constant makes it offline (else it waits out the unreachable hub's retries).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as error:
        build_model("bert", "real", train_texts=[], cache_dir=tmp_path)
    message = str(error.value)
    assert "bert-base-uncased" in message and "size: tiny" in message and "\n" not in message


def test_missing_vocab(tmp_path):
    with pytest.raises(ModelError, match="BERT vocabulary .* not found"):
        bert_tokenizer(tmp_path / "vocab.txt")


# Safety: no code runs from a model folder.

class _WritesMarker:
    """Unpickling this writes a file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def _model_folder(folder: Path, **config_extra) -> Path:
    folder.mkdir()
    config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 30522,
              "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
              **config_extra}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text(VOCAB.read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    return folder


def test_pickled_weights_are_refused_unopened(tmp_path):
    folder = _model_folder(tmp_path / "model")
    marker = tmp_path / "marker"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(ModelError, match="cannot load directory"):
        build_model(str(folder), "tiny", train_texts=(), cache_dir=tmp_path)
    assert not marker.exists()


def test_remote_code_in_a_model_folder_never_runs(tmp_path):
    marker = tmp_path / "marker"
    folder = _model_folder(tmp_path / "model", auto_map={
        "AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"})
    (folder / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    with pytest.raises(ModelError):
        build_model(str(folder), "tiny", train_texts=(), cache_dir=tmp_path)
    assert not marker.exists()
