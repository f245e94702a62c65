"""Tokenization, cached on disk per (tokenizer, texts, max length), and padding into batches.

A pair task's example is tokenized as one sequence, ``tokenizer(first, second)``: each model's own
separators (BERT ``[CLS] a [SEP] b [SEP]``, RoBERTa ``<s> a </s></s> b </s>``), truncated longest
sentence first, and segment ids (``token_type_ids``) where the architecture has them (BERT's
two-row token-type embedding; RoBERTa's one row and DistilBERT's none take no segment ids). A
single-sentence task gets no segment ids (BERT's default, all 0, is the same).

A sweep runs many trials over the same split with the same few tokenizers; each trial loads the
token ids from the cache instead of re-tokenizing 30,000 sentences. Ids are stored ragged (one flat
array plus offsets) and padded per batch to the batch's longest sentence, which on SST-2's short
phrases is several times cheaper than padding everything to ``max_length``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainers.record.atomic import staged


@dataclass(frozen=True)
class Encoded:
    """Ragged token ids: example ``i`` is ``flat[offsets[i]:offsets[i + 1]]``; ``types`` its
    segment ids, laid out alike (``None``: the model takes none)."""

    flat: np.ndarray
    offsets: np.ndarray
    types: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        return [self.flat[self.offsets[i]:self.offsets[i + 1]] for i in indices]

    def padded(self, indices: Sequence[int] | np.ndarray, pad_id: int,
               device: torch.device) -> dict[str, torch.Tensor]:
        """The model inputs of ``indices``, right-padded (:func:`pad`), segment ids included."""
        types = None if self.types is None else [self.types[self.offsets[i]:self.offsets[i + 1]]
                                                 for i in indices]
        return pad(self.rows(indices), pad_id, device, types)


def has_segments(model: PreTrainedModel) -> bool:
    """Whether the architecture embeds segment ids (BERT: 2 token types; RoBERTa: 1; DistilBERT: none)."""
    return getattr(model.config, "type_vocab_size", 0) > 1


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """sha256 (first 16 hex digits) of the fast tokenizer's JSON with truncation and padding off.

    Each ``tokenizer(..., truncation=True, max_length=n)`` call stores its truncation (and padding)
    in the backend, so hashing the live JSON made the fingerprint depend on the calls before it.
    With both off it serialises as a tokenizer never called does (both ``null``), through the same
    serialiser, so a fresh tokenizer keeps the fingerprint it always had. They are switched off on
    the tokenizer itself and put back after (a deep copy to switch off costs 15× the serialising:
    ~40 ms, on every cached encode of a trial's start).
    """
    backend = tokenizer.backend_tokenizer
    truncation, padding = backend.truncation, backend.padding
    backend.no_truncation()
    backend.no_padding()
    try:
        serialised = backend.to_str()
    finally:
        if truncation is not None:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)
    return hashlib.sha256(serialised.encode()).hexdigest()[:16]


def _flatten(rows: Sequence[Sequence[int]], offsets: np.ndarray) -> np.ndarray:
    return np.fromiter((t for row in rows for t in row), dtype=np.int32, count=int(offsets[-1]))


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
           second: Sequence[str] | None = None, segments: bool = False) -> Encoded:
    """Token ids of ``texts``, or of the pairs (``texts[i]``, ``second[i]``); segment ids only for
    pairs into a model that has them (``segments``, :func:`has_segments`)."""
    pairs = None if second is None else list(second)
    encoded = tokenizer(list(texts), pairs, truncation=True, max_length=max_length,
                        return_token_type_ids=pairs is not None and segments)
    ids = encoded["input_ids"]
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    types = _flatten(encoded["token_type_ids"], offsets) if "token_type_ids" in encoded else None
    return Encoded(_flatten(ids, offsets), offsets, types)


def _framed(texts: Sequence[str]) -> bytes:
    """The number of ``texts``, each one's UTF-8 length (8 bytes each), then their bytes back to
    back: the lengths mark the boundaries, which a separator could not (joined by ``"\\n"``,
    ``["a\\nb"]`` and ``["a", "b"]`` would share a key), at numpy speed for 30,000 texts."""
    data = [text.encode() for text in texts]
    lengths = np.fromiter(map(len, data), dtype="<i8", count=len(data))
    return len(data).to_bytes(8, "little") + lengths.tobytes() + b"".join(data)


def encode_cached(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
                  cache_dir: Path, second: Sequence[str] | None = None, segments: bool = False
                  ) -> Encoded:
    """:func:`encode`, memoised in ``cache_dir``: an ``.npz`` named by the sha256 of the
    :func:`tokenizer_fingerprint` (16 hex digits), ``max_length`` (8 bytes), ``texts``
    (:func:`_framed`) and, for pairs only, a byte for ``segments`` and the ``second`` sentences
    (so a single-sentence file's name does not depend on the model)."""
    key = hashlib.sha256()
    key.update(tokenizer_fingerprint(tokenizer).encode())
    key.update(max_length.to_bytes(8, "little"))
    key.update(_framed(texts))
    if second is not None:
        key.update(bytes([segments]))
        key.update(_framed(second))
    path = cache_dir / f"tokens-{key.hexdigest()[:20]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return Encoded(stored["flat"], stored["offsets"], stored["types"] if "types" in stored else None)
    encoded = encode(tokenizer, texts, max_length, second, segments)
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"flat": encoded.flat, "offsets": encoded.offsets}
    arrays.update({} if encoded.types is None else {"types": encoded.types})
    with staged(path) as staging:  # concurrent trials never read a half-written cache file
        np.savez(staging, **arrays)
    return encoded


def pad(rows: Sequence[np.ndarray], pad_id: int, device: torch.device,
        types: Sequence[np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row: ``input_ids`` and ``attention_mask`` on ``device``, and
    ``token_type_ids`` (padded with 0) when ``types`` are given."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    inputs = {"input_ids": torch.from_numpy(ids).to(device),
              "attention_mask": torch.from_numpy(mask).to(device)}
    if types is not None:
        segment = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(types):
            segment[i, :len(row)] = row
        inputs["token_type_ids"] = torch.from_numpy(segment).to(device)
    return inputs
