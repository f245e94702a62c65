"""Spread and paired tests for the report: pure functions of numbers, no MLflow, no I/O.

Two kinds of uncertainty meet in the tables:

- *over seeds*: the same configuration trained with k seeds gives accuracies ``x_1 … x_k``;
  :func:`mean_std` and :func:`t_interval` summarise them;
- *over test examples*: one accuracy measured on N examples is itself a binomial estimate;
  :func:`wilson_interval` gives its interval (about ±1.2 points at 92 % on 2,000 examples);
  F1 and Matthews' correlation, which are no binomial share, get :func:`bootstrap_interval`.

Two models scored on the same test examples are compared *paired*, example by example:
:func:`paired_bootstrap` (difference, interval, p-value) and :func:`mcnemar_exact` (exact binomial
test on the discordant pairs). Inputs there are boolean vectors "example i was classified
correctly", aligned so that position i is the same example for both models. For the scores GLUE
gives some tasks instead, from labels and predicted classes (positive class 1):
:func:`paired_bootstrap_f1` (F1 = 2·TP / (2·TP + FP + FN)) and :func:`paired_bootstrap_matthews`
(MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation of ``n`` values; ``std`` is NaN when ``n == 1``."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``acc_a − acc_b`` over ``n`` paired examples (fractions, not points)."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_resamples: int


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test: ``a_only`` = examples only A gets right, ``b_only`` = only B."""

    a_only: int
    b_only: int
    p_value: float


def mean_std(values: Sequence[float]) -> Summary:
    """Mean and sample standard deviation (``ddof = 1``).

    ``x̄ = (1/n) Σ x_i``,   ``s = sqrt( Σ (x_i − x̄)² / (n − 1) )``.
    With one value there is no spread to estimate: ``s`` is NaN (the report writes ``n=1``).
    """
    x = _as_array(values)
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return Summary(mean=float(np.mean(x)), std=std, n=int(x.size))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval for the mean over seeds.

    ``x̄ ± t_{(1+c)/2, n−1} · s / sqrt(n)``;
    e.g. ``[90, 92, 94]`` → ``92 ± 4.303·2/√3 = 92 ± 4.97``.
    Undefined (NaN, NaN) for ``n = 1``: one seed says nothing about seed-to-seed spread.
    """
    summary = mean_std(values)
    if summary.n < 2:
        return math.nan, math.nan
    t = float(sps.t.ppf((1 + confidence) / 2, df=summary.n - 1))
    half = t * summary.std / math.sqrt(summary.n)
    return summary.mean - half, summary.mean + half


def wilson_interval(correct: int, total: int,
                    confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for one accuracy ``p̂ = correct / total`` (as fractions).

    With ``z = Φ⁻¹((1+c)/2)``:
    ``centre = (p̂ + z²/2N) / (1 + z²/N)``,
    ``half = z / (1 + z²/N) · sqrt( p̂(1−p̂)/N + z²/4N² )``.
    For large N it tends to the normal interval ``p̂ ± z·sqrt(p̂(1−p̂)/N)`` (±1.19 points at
    p̂ = 0.92, N = 2,000) but, unlike it, stays inside [0, 1] at p̂ = 0 or 1
    (0 of 10 → [0, z²/(N+z²)] = [0, 0.2775]).
    """
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    z = float(sps.norm.ppf((1 + confidence) / 2))
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    # Exact maths keeps the bounds in [0, 1]; the clamp only removes rounding (-1e-17 at p̂ = 0).
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_bootstrap(correct_a: ArrayLike, correct_b: ArrayLike,
                     n_resamples: int = 10_000, seed: int = 0,
                     confidence: float = CONFIDENCE) -> BootstrapResult:
    """Paired bootstrap of the accuracy difference ``d̂ = acc_A − acc_B`` over the same examples.

    Per example ``d_i = 1[A right] − 1[B right] ∈ {−1, 0, +1}`` and ``d̂ = (1/N) Σ d_i``.
    A bootstrap resample draws N examples with replacement; since ``d_i`` takes three values the
    resample is fully described by how many +1, −1 and 0 it drew, which is
    ``Multinomial(N; n₊/N, n₋/N, n₀/N)``: drawing those counts is the same bootstrap in O(B)
    memory instead of O(B·N). ``d*_b = (n₊*_b − n₋*_b) / N``.

    - interval: percentiles ``(1−c)/2`` and ``(1+c)/2`` of ``d*``;
    - two-sided p-value, null-centred (the resampled differences shifted to mean 0 stand for
      "no difference"): ``p = (1 + #{b : |d*_b − d̂| ≥ |d̂|}) / (B + 1)``.

    Identical predictions give ``d̂ = 0``, interval [0, 0], ``p = 1``.
    """
    a, b = _paired(correct_a, correct_b)
    n = int(a.size)
    n_plus = int(np.sum(a & ~b))
    n_minus = int(np.sum(~a & b))
    diff = (n_plus - n_minus) / n
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [n_plus / n, n_minus / n, (n - n_plus - n_minus) / n],
                            size=n_resamples)
    boot = (draws[:, 0] - draws[:, 1]) / n
    low, high = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    extreme = int(np.sum(np.abs(boot - diff) >= abs(diff)))
    return BootstrapResult(diff=diff, ci_low=float(low), ci_high=float(high),
                           p_value=(1 + extreme) / (n_resamples + 1), n=n,
                           n_resamples=n_resamples)


def paired_bootstrap_f1(labels: ArrayLike, predicted_a: ArrayLike, predicted_b: ArrayLike,
                        n_resamples: int = 10_000, seed: int = 0,
                        confidence: float = CONFIDENCE) -> BootstrapResult:
    """Paired bootstrap of the F1 difference ``F1_A − F1_B`` (positive class 1) over the same examples.

    F1 = 2·TP / (2·TP + FP + FN) is not a mean over examples, but it is a function of counts: each
    example falls in one of 8 cells (true label, A says 1, B says 1), a resample of N examples is
    ``Multinomial(N; cell shares)``, and both models' TP, FP, FN are sums of cell counts. As in
    :func:`paired_bootstrap`: percentile interval, null-centred two-sided p-value.
    """
    return _paired_cells_bootstrap(_f1, labels, predicted_a, predicted_b, n_resamples, seed, confidence)


def paired_bootstrap_matthews(labels: ArrayLike, predicted_a: ArrayLike, predicted_b: ArrayLike,
                              n_resamples: int = 10_000, seed: int = 0,
                              confidence: float = CONFIDENCE) -> BootstrapResult:
    """Paired bootstrap of the difference of Matthews' correlations ``MCC_A − MCC_B`` (binary labels).

    ``MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``, 0 where a factor is 0 (a
    resample in which a model says one class only), as scikit-learn and GLUE define it. Like F1 it
    is a function of the confusion counts, so it is resampled exactly as :func:`paired_bootstrap_f1`.
    """
    return _paired_cells_bootstrap(_matthews, labels, predicted_a, predicted_b, n_resamples, seed,
                                   confidence)


def bootstrap_interval(metric: str, labels: ArrayLike, predicted: ArrayLike,
                       n_resamples: int = 10_000, seed: int = 0,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of one model's ``metric`` ("accuracy", "f1" or "matthews",
    as fractions) over its N test examples: the interval over test examples of a score that,
    unlike accuracy, has no binomial (Wilson) form. A resample is ``Multinomial(N; shares of the
    cells (true label, said 1))``; the bounds are the ``(1−c)/2`` and ``(1+c)/2`` percentiles."""
    score = _SCORES[metric]
    counts, n = _cell_counts(labels, predicted, predicted)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_resamples)
    low, high = np.quantile(score(draws, _SAID_A), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


# Cell of an example: 4·(true label is 1) + 2·(A says 1) + (B says 1).
_CELLS = np.arange(8)
_TRUTH, _SAID_A, _SAID_B = (_CELLS >> 2) & 1, (_CELLS >> 1) & 1, _CELLS & 1


def _cell_counts(labels: ArrayLike, predicted_a: ArrayLike,
                 predicted_b: ArrayLike) -> tuple[np.ndarray, int]:
    y = np.asarray(labels) == 1
    a, b = _paired(np.asarray(predicted_a) == 1, np.asarray(predicted_b) == 1)
    if y.shape != a.shape:
        raise ValueError(f"labels ({y.size}) and predictions ({a.size}) differ in length")
    return np.bincount(4 * y.astype(int) + 2 * a.astype(int) + b.astype(int), minlength=8), int(y.size)


def _paired_cells_bootstrap(score: Callable[[np.ndarray, np.ndarray], np.ndarray], labels: ArrayLike,
                            predicted_a: ArrayLike, predicted_b: ArrayLike, n_resamples: int,
                            seed: int, confidence: float) -> BootstrapResult:
    """``score(A) − score(B)`` and its bootstrap, for a score that is a function of the counts."""
    counts, n = _cell_counts(labels, predicted_a, predicted_b)

    def difference(rows: np.ndarray) -> np.ndarray:
        return score(rows, _SAID_A) - score(rows, _SAID_B)

    diff = float(difference(counts[None, :])[0])
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_resamples)
    boot = difference(draws)
    low, high = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    extreme = int(np.sum(np.abs(boot - diff) >= abs(diff)))
    return BootstrapResult(diff=diff, ci_low=float(low), ci_high=float(high),
                           p_value=(1 + extreme) / (n_resamples + 1), n=n, n_resamples=n_resamples)


def _confusion(counts: np.ndarray, said: np.ndarray) -> tuple[np.ndarray, ...]:
    """TP, FP, FN, TN of the model whose answer in each cell is ``said``, for each row of counts."""
    truth = _TRUTH.astype(bool)
    said = said.astype(bool)
    return tuple(counts @ (t & s).astype(int) for t, s in
                 ((truth, said), (~truth, said), (truth, ~said), (~truth, ~said)))


def _accuracy(counts: np.ndarray, said: np.ndarray) -> np.ndarray:
    tp, _, _, tn = _confusion(counts, said)
    return (tp + tn) / counts.sum(axis=-1)


def _f1(counts: np.ndarray, said: np.ndarray) -> np.ndarray:
    """F1 of the positive class; 0 where the model has no true positive."""
    tp, fp, fn, _ = _confusion(counts, said)
    return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(tp.shape), where=tp > 0)


def _matthews(counts: np.ndarray, said: np.ndarray) -> np.ndarray:
    """Matthews' correlation; 0 where a factor of the denominator is 0."""
    # Floats before the product: four counts of 40,000 examples overflow int64.
    tp, fp, fn, tn = (x.astype(float) for x in _confusion(counts, said))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.divide(tp * tn - fp * fn, denominator, out=np.zeros(tp.shape), where=denominator > 0)


_SCORES = {"accuracy": _accuracy, "f1": _f1, "matthews": _matthews}


def mcnemar_exact(correct_a: ArrayLike, correct_b: ArrayLike) -> McNemarResult:
    """Exact McNemar test of "A and B are equally accurate" on paired predictions.

    Only discordant examples carry information: ``n_A`` (A right, B wrong) and ``n_B`` (B right,
    A wrong). Under the null each discordant example is a fair coin, so
    ``n_A ~ Binomial(n_A + n_B, 1/2)`` and ``p = P(|X − m/2| ≥ |n_A − m/2|)``, two-sided
    (``scipy.stats.binomtest``). E.g. 10 vs 0 → ``p = 2 · 0.5¹⁰ = 0.00195``.
    No discordant pairs → ``p = 1``.
    """
    a, b = _paired(correct_a, correct_b)
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    if a_only + b_only == 0:
        return McNemarResult(a_only=0, b_only=0, p_value=1.0)
    p_value = float(sps.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return McNemarResult(a_only=a_only, b_only=b_only, p_value=p_value)


def _as_array(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("need a non-empty 1-D sequence of numbers")
    return x


def _paired(correct_a: ArrayLike, correct_b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two non-empty 1-D vectors of the same length, "
                         f"got {a.shape} and {b.shape}")
    return a, b
