"""Tokenization, cached on disk per (tokenizer, texts, max length), and padding into batches.

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
from transformers import PreTrainedTokenizerBase

from trainers.atomic import staged


@dataclass(frozen=True)
class Encoded:
    """Ragged token ids: example ``i`` is ``flat[offsets[i]:offsets[i + 1]]``."""

    flat: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        return [self.flat[self.offsets[i]:self.offsets[i + 1]] for i in indices]


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> Encoded:
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter((t for row in ids for t in row), dtype=np.int32, count=int(offsets[-1]))
    return Encoded(flat, offsets)


def encode_cached(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
                  cache_dir: Path) -> Encoded:
    """:func:`encode`, memoised in ``cache_dir`` (an ``.npz`` per tokenizer × texts × length)."""
    key = hashlib.sha256()
    key.update(tokenizer_fingerprint(tokenizer).encode())
    key.update(str(max_length).encode())
    key.update("\n".join(texts).encode())
    path = cache_dir / f"tokens-{key.hexdigest()[:20]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return Encoded(stored["flat"], stored["offsets"])
    encoded = encode(tokenizer, texts, max_length)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with staged(path) as staging:  # concurrent trials never read a half-written cache file
        np.savez(staging, flat=encoded.flat, offsets=encoded.offsets)
    return encoded


def pad(rows: Sequence[np.ndarray], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row: ``input_ids`` and ``attention_mask`` on ``device``."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": torch.from_numpy(ids).to(device),
            "attention_mask": torch.from_numpy(mask).to(device)}
