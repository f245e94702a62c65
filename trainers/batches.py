"""Turn rows of the training split into model inputs: one view per model, clean or noisy.

Each model tokenizes the raw sentence itself (BERT and RoBERTa disagree on tokens); distillation
happens on sequence-level logits, so the views only have to cover the same sentences. Clean views
come from the token cache; a noisy view re-tokenizes the noised sentences of that batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from trainers.config import TrainConfig
from trainers.data import Examples
from trainers.noise import noisy_batch
from trainers.tokens import Encoded, encode_cached, pad

MEGA_BATCH = 50  # batches per length-sorted group, as in Hugging Face's LengthGroupedSampler


def length_grouped(rows: np.ndarray, lengths: np.ndarray, batch_size: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length from already-shuffled ``rows``: groups of ``MEGA_BATCH`` batches
    are sorted by length, cut into batches, and the batches shuffled. Every row appears once; on
    SST-2's mix of 2- and 50-token phrases this removes most padding (a 2-3x speed-up on CPU)."""
    batches = []
    group = MEGA_BATCH * batch_size
    for start in range(0, len(rows), group):
        chunk = rows[start:start + group]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class Batch:
    rows: np.ndarray
    labels: torch.Tensor
    student: dict[str, torch.Tensor]
    teachers: list[dict[str, torch.Tensor]]


class TrainViews:
    def __init__(self, train: Examples, student_tokenizer: PreTrainedTokenizerBase,
                 teacher_tokenizers: Sequence[PreTrainedTokenizerBase], config: TrainConfig,
                 cache_dir: Path, device: torch.device) -> None:
        self.train = train
        self.config = config
        self.device = device
        self.student_tokenizer = student_tokenizer
        self.teacher_tokenizers = list(teacher_tokenizers)
        self.student_ids = encode_cached(student_tokenizer, train.sentences,
                                         config.data.max_length, cache_dir)
        self.teacher_ids = [encode_cached(t, train.sentences, config.data.max_length, cache_dir)
                            for t in self.teacher_tokenizers]
        self.labels = torch.from_numpy(train.labels).to(device)
        self.lengths = np.diff(self.student_ids.offsets)

    def batch(self, rows: np.ndarray, epoch: int, *, noisy: bool, with_teachers: bool) -> Batch:
        """Inputs for ``rows``; ``noisy`` applies the trial's noise to the student's view (and to
        the teachers' view when ``noise_teachers``), seeded by (seed, epoch, example)."""
        cfg = self.config
        texts = None
        if noisy and cfg.noise_p > 0:
            texts = noisy_batch([self.train.sentences[i] for i in rows], self.train.ids[rows],
                                p=cfg.noise_p, seed=cfg.seed, epoch=epoch, token=cfg.noise_token)
        student = self._view(self.student_tokenizer, self.student_ids, rows, texts)
        teachers = []
        if with_teachers:
            teacher_texts = texts if cfg.noise_teachers else None
            teachers = [self._view(tok, ids, rows, teacher_texts)
                        for tok, ids in zip(self.teacher_tokenizers, self.teacher_ids)]
        return Batch(rows, self.labels[torch.from_numpy(rows).to(self.device)], student, teachers)

    def _view(self, tokenizer: PreTrainedTokenizerBase, ids: Encoded, rows: np.ndarray,
              texts: list[str] | None) -> dict[str, torch.Tensor]:
        if texts is None:
            return pad(ids.rows(rows), tokenizer.pad_token_id, self.device)
        encoded = tokenizer(texts, truncation=True, max_length=self.config.data.max_length)
        return pad([np.asarray(r) for r in encoded["input_ids"]], tokenizer.pad_token_id, self.device)
