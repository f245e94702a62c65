"""Properties of noise injection: identity at p=0, total at p=1, rate ≈ p, reproducible."""

import numpy as np
import pytest

from tests.conftest import SST2
from trainers.data.glue import read_tsv
from trainers.data.noise import add_noise, noisy_batch, noisy_pair_batch


@pytest.fixture(scope="module")
def sentences():
    return list(read_tsv(SST2 / "validation.tsv").sentences)


def test_p0_is_identity(sentences):
    assert noisy_batch(sentences, range(len(sentences)), p=0.0, seed=1, epoch=1) == sentences


def test_p1_replaces_every_word(sentences):
    for clean, noisy in zip(sentences, noisy_batch(sentences, range(len(sentences)), p=1.0, seed=1, epoch=1)):
        assert noisy.split() == ["noise_word"] * len(clean.split())


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_rate_is_p(sentences, p):
    noisy = noisy_batch(sentences, range(len(sentences)), p=p, seed=7, epoch=2)
    words = sum(len(s.split()) for s in sentences)  # ~16,000 words: the rate is within ±0.01 of p
    replaced = sum(n.split().count("noise_word") for n in noisy)
    assert abs(replaced / words - p) < 0.01


def test_same_seed_same_output_new_epoch_new_noise(sentences):
    ids = range(len(sentences))
    first = noisy_batch(sentences, ids, p=0.2, seed=3, epoch=1)
    assert first == noisy_batch(sentences, ids, p=0.2, seed=3, epoch=1)
    assert first != noisy_batch(sentences, ids, p=0.2, seed=3, epoch=2)
    assert first != noisy_batch(sentences, ids, p=0.2, seed=4, epoch=1)


def test_noise_depends_on_example_not_batch_position(sentences):
    a = noisy_batch(sentences[:10], range(10), p=0.5, seed=0, epoch=1)
    b = noisy_batch(sentences[5:10], range(5, 10), p=0.5, seed=0, epoch=1)
    assert a[5:] == b


def test_the_paper_example_and_custom_token():
    rng = np.random.default_rng(0)
    out = add_noise("This is a sentence.", 0.5, rng, token="<noise>")
    assert len(out.split()) == 4 and set(out.split()) <= {"This", "is", "a", "sentence.", "<noise>"}


def test_a_pair_is_noised_in_both_sentences_and_its_first_as_alone(sentences):
    firsts, seconds = sentences[:200], sentences[200:400]
    a, b = noisy_pair_batch(firsts, seconds, range(200), p=0.3, seed=5, epoch=1)
    assert a == noisy_batch(firsts, range(200), p=0.3, seed=5, epoch=1)
    assert sum(s.split().count("noise_word") for s in b) > 0 and b != seconds
    assert (a, b) == noisy_pair_batch(firsts, seconds, range(200), p=0.3, seed=5, epoch=1)
    assert noisy_pair_batch(firsts, seconds, range(200), p=0.0, seed=5, epoch=1) == (firsts, seconds)
