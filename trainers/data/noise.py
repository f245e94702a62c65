"""Noise injection: each word of a sentence is replaced, with probability ``p``, by a noise token.

As in the original work, ``add_noise("This is a sentence.", p=0.2, ...)`` may give
``"This is a noise_word."``: words are whitespace-separated tokens. Draws come from a generator
seeded by ``(seed, epoch, example_id)``, so a trial is reproducible and each epoch sees new noise.
A sentence pair is noised in both sentences, each word with probability ``p``, from the example's
one generator (first sentence's draws, then the second's): the first sentence gets exactly the
noise it would get alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def add_noise(sentence: str, p: float, rng: np.random.Generator, token: str = "noise_word") -> str:
    """Replace each whitespace-separated word by ``token`` independently with probability ``p``."""
    words = sentence.split()
    if p <= 0 or not words:
        return sentence
    replace = rng.random(len(words)) < p
    return " ".join(token if hit else word for word, hit in zip(words, replace))


def noisy_batch(sentences: Sequence[str], example_ids: Sequence[int], *, p: float, seed: int,
                epoch: int, token: str = "noise_word") -> list[str]:
    """The noisy view of a batch: example ``i`` in epoch ``e`` always gets the same noise."""
    if p <= 0:
        return list(sentences)
    return [add_noise(s, p, np.random.default_rng([seed, epoch, int(i)]), token)
            for s, i in zip(sentences, example_ids)]


def noisy_pair_batch(sentences: Sequence[str], second: Sequence[str], example_ids: Sequence[int], *,
                     p: float, seed: int, epoch: int, token: str = "noise_word"
                     ) -> tuple[list[str], list[str]]:
    """The noisy view of a batch of pairs: both sentences of example ``i`` noised, reproducibly."""
    if p <= 0:
        return list(sentences), list(second)
    firsts, seconds = [], []
    for a, b, i in zip(sentences, second, example_ids):
        rng = np.random.default_rng([seed, epoch, int(i)])
        firsts.append(add_noise(a, p, rng, token))
        seconds.append(add_noise(b, p, rng, token))
    return firsts, seconds
