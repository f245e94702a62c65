"""Golden tests of orchestrator.report.stats: inputs crafted so that the answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.report import stats


def test_mean_std_uses_sample_std() -> None:
    # [90, 92, 94]: mean 92, squared deviations 4 + 0 + 4 = 8, / (n − 1) = 4 → s = 2.
    summary = stats.mean_std([90.0, 92.0, 94.0])
    assert summary == stats.Summary(mean=92.0, std=2.0, n=3)


def test_mean_std_single_value_has_nan_std() -> None:
    summary = stats.mean_std([93.1])
    assert summary.mean == 93.1 and summary.n == 1 and math.isnan(summary.std)


def test_mean_std_rejects_empty() -> None:
    with pytest.raises(ValueError):
        stats.mean_std([])


def test_t_interval_matches_hand_computation() -> None:
    # t_{0.975, 2} = 4.302653 (table value); half-width = 4.302653 · 2 / √3 = 4.968275.
    low, high = stats.t_interval([90.0, 92.0, 94.0])
    assert low == pytest.approx(92.0 - 4.968275, abs=1e-5)
    assert high == pytest.approx(92.0 + 4.968275, abs=1e-5)


def test_t_interval_two_seeds() -> None:
    # [1, 3]: mean 2, s = √2, t_{0.975, 1} = 12.7062 → half-width = 12.7062 · √2 / √2 = 12.7062.
    low, high = stats.t_interval([1.0, 3.0])
    assert (low, high) == pytest.approx((2.0 - 12.7062, 2.0 + 12.7062), abs=1e-4)


def test_t_interval_undefined_for_one_seed() -> None:
    assert all(math.isnan(v) for v in stats.t_interval([93.1]))


def test_wilson_interval_at_zero_successes() -> None:
    # p̂ = 0: lower bound 0, upper bound z² / (N + z²) = 3.841459 / 13.841459 = 0.277533.
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.277533, abs=1e-6)


def test_wilson_interval_is_about_1_2_points_at_paper_scale() -> None:
    # DESIGN.md: 92 % on 2,000 test examples → about ±1.2 points (normal: 1.96·√(.92·.08/2000)).
    low, high = stats.wilson_interval(1840, 2000)
    assert (high - low) / 2 == pytest.approx(0.0119, abs=0.0002)
    assert low < 0.92 < high


def test_wilson_interval_rejects_bad_counts() -> None:
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_bootstrap_identical_predictions() -> None:
    correct = [True] * 70 + [False] * 30
    result = stats.paired_bootstrap(correct, correct, n_resamples=2000)
    assert (result.diff, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0 and result.n == 100


def test_bootstrap_one_sided_disagreement_has_degenerate_interval() -> None:
    # A right everywhere, B wrong everywhere: every resample gives d* = 1, so the interval is
    # [1, 1] and no resample is as far from d̂ as 0 is: p = 1 / (B + 1).
    result = stats.paired_bootstrap([True] * 50, [False] * 50, n_resamples=999)
    assert (result.diff, result.ci_low, result.ci_high) == (1.0, 1.0, 1.0)
    assert result.p_value == pytest.approx(1 / 1000)


def test_bootstrap_matches_normal_approximation() -> None:
    # 1,000 examples: 60 only A gets right, 40 only B, 900 agree. d̂ = 0.02,
    # se = √((p₊ + p₋ − d̂²)/N) = √((0.1 − 0.0004)/1000) = 0.009980 → 95 % ≈ 0.02 ± 0.01956,
    # two-sided p ≈ 2(1 − Φ(0.02/0.00998)) = 0.045.
    a = [True] * 60 + [False] * 40 + [True] * 450 + [False] * 450
    b = [False] * 60 + [True] * 40 + [True] * 450 + [False] * 450
    result = stats.paired_bootstrap(a, b, n_resamples=20_000, seed=1)
    assert result.diff == pytest.approx(0.02)
    assert result.ci_low == pytest.approx(0.02 - 0.01956, abs=0.002)
    assert result.ci_high == pytest.approx(0.02 + 0.01956, abs=0.002)
    assert result.p_value == pytest.approx(0.045, abs=0.01)


def test_bootstrap_is_seeded() -> None:
    a = [True, False, True, True, False] * 20
    b = [True, True, False, True, False] * 20
    assert stats.paired_bootstrap(a, b, seed=3) == stats.paired_bootstrap(a, b, seed=3)


def test_bootstrap_rejects_unpaired_vectors() -> None:
    with pytest.raises(ValueError):
        stats.paired_bootstrap([True, False], [True])


def test_mcnemar_ten_to_zero() -> None:
    # 10 discordant pairs, all for A: p = 2 · 0.5¹⁰ = 0.001953125.
    a = [True] * 100
    b = [False] * 10 + [True] * 90
    result = stats.mcnemar_exact(a, b)
    assert (result.a_only, result.b_only) == (10, 0)
    assert result.p_value == pytest.approx(2 * 0.5 ** 10)


def test_mcnemar_balanced_discordance_is_not_significant() -> None:
    # 3 vs 3: the observed split is the most likely one, so p = 1.
    a = [True] * 3 + [False] * 3 + [True] * 4
    b = [False] * 3 + [True] * 3 + [True] * 4
    assert stats.mcnemar_exact(a, b).p_value == pytest.approx(1.0)


def test_mcnemar_60_to_40() -> None:
    # 2 · P(X ≥ 60) = 2 · Σ_{k=60..100} C(100, k) / 2¹⁰⁰ = 0.0568879 (integer arithmetic).
    a = [True] * 60 + [False] * 40
    b = [False] * 60 + [True] * 40
    assert stats.mcnemar_exact(a, b).p_value == pytest.approx(0.0568879, abs=1e-7)


def test_mcnemar_without_discordant_pairs() -> None:
    assert stats.mcnemar_exact([True, False], [True, False]) == stats.McNemarResult(0, 0, 1.0)


def test_paired_bootstrap_f1_difference_interval_and_identity():
    from sklearn.metrics import f1_score

    from orchestrator.report.stats import paired_bootstrap_f1

    generator = np.random.default_rng(3)
    labels = generator.integers(0, 2, 400)
    a = np.where(generator.random(400) < 0.85, labels, 1 - labels)
    b = np.where(generator.random(400) < 0.65, labels, 1 - labels)
    result = paired_bootstrap_f1(labels, a, b, n_resamples=4_000)
    assert result.diff == pytest.approx(f1_score(labels, a) - f1_score(labels, b))
    assert result.ci_low < result.diff < result.ci_high and result.ci_low > 0 and result.p_value < 0.01
    same = paired_bootstrap_f1(labels, a, a, n_resamples=500)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert paired_bootstrap_f1(labels, a, b, n_resamples=500, seed=1) == \
        paired_bootstrap_f1(labels, a, b, n_resamples=500, seed=1)


def _confusion_set(tp: int, fn: int, tn: int, fp: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions with the given confusion counts."""
    labels = np.array([1] * (tp + fn) + [0] * (tn + fp))
    predicted = np.array([1] * tp + [0] * fn + [0] * tn + [1] * fp)
    return labels, predicted


def test_paired_bootstrap_matthews_golden_difference() -> None:
    from sklearn.metrics import matthews_corrcoef

    # 50 positives, 50 negatives. A: TP 40, FN 10, TN 45, FP 5 →
    # (40·45 − 5·10) / sqrt(45·50·50·55) = 1750 / (50·√2475) = 0.7035265;
    # B: TP 30, FN 20, TN 40, FP 10 → (1200 − 200) / sqrt(40·50·50·60) = 20 / √2400 = 0.4082483.
    labels, a = _confusion_set(40, 10, 45, 5)
    same_labels, b = _confusion_set(30, 20, 40, 10)
    assert np.array_equal(labels, same_labels)
    assert matthews_corrcoef(labels, a) == pytest.approx(0.7035265, abs=1e-7)
    assert matthews_corrcoef(labels, b) == pytest.approx(0.4082483, abs=1e-7)
    result = stats.paired_bootstrap_matthews(labels, a, b, n_resamples=4_000)
    assert result.diff == pytest.approx(0.7035265 - 0.4082483, abs=1e-7)
    assert result.n == 100 and result.ci_low < result.diff < result.ci_high
    same = stats.paired_bootstrap_matthews(labels, a, a, n_resamples=500)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert stats.paired_bootstrap_matthews(labels, a, b, n_resamples=500, seed=1) == \
        stats.paired_bootstrap_matthews(labels, a, b, n_resamples=500, seed=1)


def test_matthews_of_a_one_class_model_is_zero() -> None:
    # Saying 1 everywhere: TN = FN = 0, a factor of the denominator is 0 → MCC 0 (sklearn's too).
    labels, a = _confusion_set(40, 10, 45, 5)
    result = stats.paired_bootstrap_matthews(labels, a, np.ones(100, dtype=int), n_resamples=200)
    assert result.diff == pytest.approx(0.7035265, abs=1e-7)


def test_bootstrap_interval_over_test_examples() -> None:
    # A perfect model scores 1 in every resample; an imperfect one's interval holds its score.
    labels, perfect = _confusion_set(50, 0, 50, 0)
    for metric in ("accuracy", "f1", "matthews"):
        assert stats.bootstrap_interval(metric, labels, perfect, n_resamples=200) == (1.0, 1.0)
    labels, a = _confusion_set(40, 10, 45, 5)  # F1 = 80 / (80 + 15) = 0.8421053
    low, high = stats.bootstrap_interval("f1", labels, a)
    assert low < 80 / 95 < high and high - low < 0.2
    # Accuracy 0.85 on 100 examples: the percentile interval is close to Wilson's [0.767, 0.907].
    low, high = stats.bootstrap_interval("accuracy", labels, a)
    assert low == pytest.approx(0.78, abs=0.02) and high == pytest.approx(0.92, abs=0.02)
    assert stats.bootstrap_interval("f1", labels, a, seed=2) == \
        stats.bootstrap_interval("f1", labels, a, seed=2)
