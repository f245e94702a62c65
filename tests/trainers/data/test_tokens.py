"""Token ids, ragged and cached: a sentence or a pair tokenized as the model's tokenizer does it,
segment ids only for a pair into a model that has them, padding to the batch's longest row, and a
cache file per (tokenizer, texts, length, pair) that a changed second sentence does not reuse, that
texts split differently do not share, and that earlier calls on the tokenizer do not rename."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.conftest import VOCAB
from trainers.data.tokens import encode, encode_cached, has_segments, pad, tokenizer_fingerprint
from trainers.models.build import bert_tokenizer, bpe_tokenizer, preset_config

CPU = torch.device("cpu")
FIRST = ["a gripping , funny film", "dull", "the plot is thin but the cast carries it to the end"]
SECOND = ["it is funny", "boring and long", "the cast is good"]


@pytest.fixture(scope="module")
def tokenizer():
    return bert_tokenizer(VOCAB)


@pytest.mark.parametrize("name, segments", [("bert", True), ("tinybert", True), ("roberta", False),
                                            ("distilbert", False)])
def test_only_an_architecture_with_two_token_types_takes_segment_ids(name, segments):
    assert has_segments(SimpleNamespace(config=preset_config(name, vocab_size=100))) is segments


def test_single_sentences_are_the_tokenizers_own_ids_without_segments(tokenizer):
    encoded = encode(tokenizer, FIRST, max_length=64, segments=True)  # segments: pairs only
    assert encoded.types is None and len(encoded) == len(FIRST)
    for row, text in zip(encoded.rows(range(len(FIRST))), FIRST):
        assert row.tolist() == tokenizer(text)["input_ids"]
        assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id


def test_a_pair_is_one_sequence_with_segment_one_after_the_first_separator(tokenizer):
    encoded = encode(tokenizer, FIRST, max_length=64, second=SECOND, segments=True)
    for i, (a, b) in enumerate(zip(FIRST, SECOND)):
        ids = encoded.rows([i])[0]
        types = encoded.types[encoded.offsets[i]:encoded.offsets[i + 1]]
        first_sep = ids.tolist().index(tokenizer.sep_token_id)
        assert ids.tolist() == tokenizer(a, b)["input_ids"]
        assert (types[:first_sep + 1] == 0).all() and (types[first_sep + 1:] == 1).all()
        assert first_sep + 1 == len(tokenizer(a)["input_ids"])  # [CLS] a [SEP] | b [SEP]
    without = encode(tokenizer, FIRST, max_length=64, second=SECOND, segments=False)
    assert without.types is None and np.array_equal(without.flat, encoded.flat)


def test_truncation_keeps_every_row_within_max_length(tokenizer):
    long = " ".join(["word"] * 40)
    encoded = encode(tokenizer, [long, "short"], max_length=12, second=[long, "short"], segments=True)
    lengths = np.diff(encoded.offsets)
    assert lengths[0] == 12 and lengths[1] < 12
    assert set(encoded.types[:12].tolist()) == {0, 1}  # longest first: both sentences keep a part


def test_padding_to_the_longest_row_with_a_mask_and_zero_segments(tokenizer):
    encoded = encode(tokenizer, FIRST, max_length=64, second=SECOND, segments=True)
    order = [2, 0, 1]
    inputs = encoded.padded(order, pad_id=tokenizer.pad_token_id, device=CPU)
    lengths = np.diff(encoded.offsets)[order]
    assert inputs["input_ids"].shape == inputs["token_type_ids"].shape == (3, lengths.max())
    assert inputs["attention_mask"].sum(dim=1).tolist() == lengths.tolist()
    for i, (row, n) in enumerate(zip(encoded.rows(order), lengths)):
        assert inputs["input_ids"][i, :n].tolist() == row.tolist()
        assert (inputs["input_ids"][i, n:] == tokenizer.pad_token_id).all()
        assert (inputs["token_type_ids"][i, n:] == 0).all()
    assert all(t.dtype == torch.int64 for t in inputs.values())
    plain = pad([np.array([5, 6]), np.array([7])], pad_id=0, device=CPU)
    assert set(plain) == {"input_ids", "attention_mask"}
    assert plain["input_ids"].tolist() == [[5, 6], [7, 0]]
    assert plain["attention_mask"].tolist() == [[1, 1], [1, 0]]


def test_the_cache_returns_the_same_ids_and_keys_on_everything_that_changes_them(tmp_path):
    tokenizer = bert_tokenizer(VOCAB)

    def cached(texts=FIRST, second=None, segments=False, length=64):
        return encode_cached(tokenizer, texts, length, tmp_path, second, segments)

    def files():
        return sorted(p.name for p in tmp_path.glob("tokens-*.npz"))

    first = cached()
    (name,) = files()
    encode(tokenizer, ["x"], max_length=5)  # leaves truncation at 5 in the tokenizer
    cached()
    assert files() == [name]  # the file of a fresh tokenizer's fingerprint
    again = cached()
    assert files() == [name] and np.array_equal(again.flat, first.flat)
    assert np.array_equal(again.offsets, first.offsets) and again.types is None
    cached(segments=True)
    assert files() == [name]  # a single-sentence file keeps its name whatever the model
    pair = cached(second=SECOND, segments=True)
    assert len(files()) == 2
    stored = cached(second=SECOND, segments=True)  # read back, segment ids included
    assert np.array_equal(stored.types, pair.types) and len(files()) == 2
    changed = cached(second=[*SECOND[:2], "the cast is bad"], segments=True)
    assert len(files()) == 3 and not np.array_equal(changed.flat, pair.flat)
    assert cached(second=SECOND, segments=False).types is None and len(files()) == 4
    short = cached(length=8)
    assert len(files()) == 5 and np.diff(short.offsets).max() == 8


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_the_fingerprint_is_a_fresh_tokenizers_whatever_was_called_before(kind, tmp_path):
    tokenizer = bert_tokenizer(VOCAB) if kind == "wordpiece" else bpe_tokenizer(FIRST + SECOND, tmp_path)
    # The fingerprint as computed before truncation and padding were left out: a fresh tokenizer's
    # must not change, or every token cache file written so far would be orphaned.
    stored = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]
    assert tokenizer_fingerprint(tokenizer) == stored
    encode(tokenizer, FIRST, max_length=8)
    truncation = tokenizer.backend_tokenizer.truncation
    assert truncation is not None and truncation["max_length"] == 8
    assert tokenizer_fingerprint(tokenizer) == stored
    assert tokenizer.backend_tokenizer.truncation == truncation  # the tokenizer itself is untouched
    tokenizer(FIRST, padding="max_length", max_length=40)
    padding = tokenizer.backend_tokenizer.padding
    assert padding is not None
    assert tokenizer_fingerprint(tokenizer) == stored
    assert tokenizer.backend_tokenizer.padding == padding  # put back as it was


@pytest.mark.parametrize("one, other", [
    ((["a\nb"], None, 64), (["a", "b"], None, 64)),
    ((["dull\nfilm", "long"], SECOND[:2], 64), (["dull", "film\nlong"], SECOND[:2], 64)),
    ((["4 good"], None, 6), ([" good"], None, 64)),  # the length's digits ran into the text's
])
def test_inputs_that_a_joined_key_would_confuse_get_files_of_their_own(one, other, tokenizer, tmp_path):
    for texts, second, length in (one, other):
        cached = encode_cached(tokenizer, texts, length, tmp_path, second, segments=True)
        fresh = encode(tokenizer, texts, length, second, segments=True)
        assert np.array_equal(cached.offsets, fresh.offsets) and np.array_equal(cached.flat, fresh.flat)
    assert len(list(tmp_path.glob("tokens-*.npz"))) == 2
