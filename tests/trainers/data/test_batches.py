"""Batches of a training epoch: length grouping deals every row once, in batches cut from
length-sorted groups (little padding), reproducibly from the epoch's generator; each model's view
of a batch is its own tokenization of the same rows, with the trial's noise in the student's view
(the teachers' too only when asked), the same noise for an example within an epoch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tests.conftest import SST2, VOCAB
from trainers.config import DataConfig, TrainConfig
from trainers.data.batches import MEGA_BATCH, TrainViews, length_grouped
from trainers.data.glue import Examples
from trainers.models.build import build_model

CPU = torch.device("cpu")
WORDS = "the film is a gripping funny dull long short story of love and loss told well".split()


def _lengths(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(2, 50, size=n)


def _grouped(n: int, batch_size: int, seed: int):
    lengths = _lengths(n)
    rows = np.random.default_rng(seed).permutation(n)
    return rows, lengths, length_grouped(rows, lengths, batch_size, np.random.default_rng(seed))


@pytest.mark.parametrize("n, batch_size", [(1000, 8), (803, 4), (5, 16)])
def test_every_row_once_in_batches_of_at_most_the_batch_size(n, batch_size):
    rows, _, batches = _grouped(n, batch_size, seed=1)
    dealt = np.concatenate(batches)
    assert sorted(dealt.tolist()) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    groups = [rows[i:i + MEGA_BATCH * batch_size] for i in range(0, n, MEGA_BATCH * batch_size)]
    assert len(batches) == sum(-(-len(g) // batch_size) for g in groups)  # one short batch per group


def test_batches_of_one_group_hold_neighbouring_lengths_and_pad_little():
    rows, lengths, batches = _grouped(400, 8, seed=2)  # 400 rows = one group of 50 batches
    for a, b in itertools.combinations(batches, 2):
        la, lb = lengths[a], lengths[b]
        assert la.min() >= lb.max() or lb.min() >= la.max()

    def padding(bs):
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in bs)

    assert padding(batches) * 5 < padding([rows[i:i + 8] for i in range(0, 400, 8)])


def test_the_epochs_generator_decides_the_order():
    _, _, first = _grouped(300, 8, seed=3)
    _, _, again = _grouped(300, 8, seed=3)
    _, _, other = _grouped(300, 8, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


@pytest.fixture(scope="module")
def train():
    generator = np.random.default_rng(0)
    sentences = tuple(" ".join(generator.choice(WORDS, size=generator.integers(2, 12))) for _ in range(24))
    return Examples(sentences, generator.integers(0, 2, 24), np.arange(100, 124))


@pytest.fixture(scope="module")
def models(train, tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    return [build_model(name, "tiny", train_texts=train.sentences, cache_dir=cache, vocab_file=VOCAB)
            for name in ("tinybert", "roberta")]


def _views(train, models, tmp_path, **noise) -> TrainViews:
    config = TrainConfig(method="kd", student="tinybert", teachers=("roberta",),
                         data=DataConfig(source=str(SST2), max_length=16), **noise)
    return TrainViews(train, models[0], models[1:], config, tmp_path, CPU)


def test_each_model_sees_its_own_tokens_of_the_same_rows(train, models, tmp_path):
    views = _views(train, models, tmp_path)
    rows = np.array([5, 0, 17])
    batch = views.batch(rows, epoch=1, noisy=False, with_teachers=True)
    assert batch.labels.tolist() == train.labels[rows].tolist()
    for built, view in zip(models, [batch.student, *batch.teachers]):
        for i, row in enumerate(rows):
            ids = built.tokenizer(train.sentences[row], truncation=True, max_length=16)["input_ids"]
            assert view["input_ids"][i, :len(ids)].tolist() == ids
            assert view["attention_mask"][i].sum() == len(ids)
    assert views.lengths.tolist() == [len(models[0].tokenizer(s)["input_ids"]) for s in train.sentences]
    assert views.batch(rows, epoch=1, noisy=False, with_teachers=False).teachers == []


@pytest.mark.parametrize("noise_teachers", [False, True])
def test_noise_reaches_the_student_each_epoch_anew_and_the_teachers_only_when_asked(
        train, models, tmp_path, noise_teachers):
    views = _views(train, models, tmp_path, noise_p=0.5, noise_teachers=noise_teachers)
    rows = np.arange(12)
    clean = views.batch(rows, epoch=1, noisy=False, with_teachers=True)
    noisy = views.batch(rows, epoch=1, noisy=True, with_teachers=True)
    noise_id = models[0].tokenizer.convert_tokens_to_ids("noise")  # noise_word: noise _ word
    assert (noisy.student["input_ids"] == noise_id).any()
    assert not (clean.student["input_ids"] == noise_id).any()
    same = views.batch(rows, epoch=1, noisy=True, with_teachers=True)
    later = views.batch(rows, epoch=2, noisy=True, with_teachers=True)
    assert torch.equal(same.student["input_ids"], noisy.student["input_ids"])
    assert not torch.equal(later.student["input_ids"], noisy.student["input_ids"])
    teacher_noised = not torch.equal(noisy.teachers[0]["input_ids"], clean.teachers[0]["input_ids"])
    assert teacher_noised is noise_teachers
    off = _views(train, models, tmp_path, noise_p=0.0).batch(rows, epoch=1, noisy=True, with_teachers=False)
    assert torch.equal(off.student["input_ids"], clean.student["input_ids"])
