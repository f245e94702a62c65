"""Turn rows of the training split into model inputs: one view per model, clean or noisy.

Each model tokenizes the raw sentence (or sentence pair, with its own separators and segment ids)
itself (BERT and RoBERTa disagree on tokens); distillation happens on sequence-level logits, so the
views only have to cover the same examples. Clean views come from the token cache; a noisy view
re-tokenizes the noised texts of that batch (both sentences of a pair are noised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.config import TrainConfig
from trainers.data.glue import Examples
from trainers.data.noise import noisy_batch, noisy_pair_batch
from trainers.data.tokens import Encoded, encode
from trainers.models.build import Built

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
    def __init__(self, train: Examples, student: Built, teachers: Sequence[Built], config: TrainConfig,
                 cache_dir: Path, device: torch.device) -> None:
        self.train = train
        self.config = config
        self.device = device
        self.student = student
        self.teachers = list(teachers)
        self.student_ids = student.encode(train, config.data.max_length, cache_dir)
        self.teacher_ids = [t.encode(train, config.data.max_length, cache_dir) for t in self.teachers]
        self.labels = torch.from_numpy(train.labels).to(device)
        self.lengths = np.diff(self.student_ids.offsets)

    def batch(self, rows: np.ndarray, epoch: int, *, noisy: bool, with_teachers: bool) -> Batch:
        """Inputs for ``rows``; ``noisy`` applies the trial's noise to the student's view (and to
        the teachers' view when ``noise_teachers``), seeded by (seed, epoch, example)."""
        cfg = self.config
        texts = None
        if noisy and cfg.noise_p > 0:
            first, ids = [self.train.sentences[i] for i in rows], self.train.ids[rows]
            noise = {"p": cfg.noise_p, "seed": cfg.seed, "epoch": epoch, "token": cfg.noise_token}
            if self.train.second is None:
                texts = (noisy_batch(first, ids, **noise), None)
            else:
                texts = noisy_pair_batch(first, [self.train.second[i] for i in rows], ids, **noise)
        student = self._view(self.student, self.student_ids, rows, texts)
        teachers = []
        if with_teachers:
            teacher_texts = texts if cfg.noise_teachers else None
            teachers = [self._view(t, ids, rows, teacher_texts)
                        for t, ids in zip(self.teachers, self.teacher_ids)]
        return Batch(rows, self.labels[torch.from_numpy(rows).to(self.device)], student, teachers)

    def _view(self, model: Built, ids: Encoded, rows: np.ndarray,
              texts: tuple[list[str], list[str] | None] | None) -> dict[str, torch.Tensor]:
        pad_id = model.tokenizer.pad_token_id
        if texts is None:
            return ids.padded(rows, pad_id, self.device)
        encoded = encode(model.tokenizer, texts[0], self.config.data.max_length, texts[1], model.segments)
        return encoded.padded(range(len(rows)), pad_id, self.device)
