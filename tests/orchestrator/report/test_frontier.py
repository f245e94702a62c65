"""The Pareto front of (score, cost) points (``orchestrator/report/frontier.py``): its two defining
properties on many random point sets, ties and twins included, and the cases worth naming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.report.frontier import dominates, pareto_front

SETS = 400


def _random_points(rng: np.random.Generator) -> list[tuple[float, float]]:
    """Up to 30 points; half the sets on a 6×6 grid, so that equal scores, equal costs and equal
    points are common, the other half continuous."""
    n = int(rng.integers(0, 31))
    if rng.random() < 0.5:
        return [(float(s), float(c)) for s, c in rng.integers(0, 6, size=(n, 2))]
    return [(float(s), float(c)) for s, c in rng.normal(size=(n, 2))]


@pytest.mark.parametrize("seed", range(4))
def test_no_point_on_the_front_is_dominated(seed):
    rng = np.random.default_rng(seed)
    for _ in range(SETS // 4):
        points = _random_points(rng)
        for i in pareto_front(points):
            assert not any(dominates(q, points[i]) for q in points), (points, i)


@pytest.mark.parametrize("seed", range(4))
def test_every_point_off_the_front_is_dominated_by_one_on_it(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(SETS // 4):
        points = _random_points(rng)
        front = pareto_front(points)
        assert front == sorted(set(front))
        for i in set(range(len(points))) - set(front):
            assert any(dominates(points[j], points[i]) for j in front), (points, i)


def test_the_front_does_not_depend_on_the_points_order():
    rng = np.random.default_rng(7)
    for _ in range(100):
        points = _random_points(rng)
        order = rng.permutation(len(points))
        shuffled = [points[i] for i in order]
        assert sorted(points[i] for i in pareto_front(points)) == sorted(
            shuffled[i] for i in pareto_front(shuffled))


def test_named_cases():
    assert pareto_front([]) == []
    assert pareto_front([(80.0, 10.0)]) == [0]
    # An equal twin dominates neither: both stay. The same score at a higher cost is dominated, as is
    # a lower score at the same cost.
    assert pareto_front([(80.0, 10.0), (80.0, 10.0), (80.0, 12.0), (79.0, 10.0)]) == [0, 1]
    # A staircase: each step buys score with cost; the point below it is off.
    assert pareto_front([(90.0, 20.0), (85.0, 10.0), (80.0, 5.0), (84.0, 15.0)]) == [0, 1, 2]
    assert dominates((80.0, 10.0), (80.0, 11.0)) and not dominates((80.0, 10.0), (80.0, 10.0))


def test_a_point_without_a_number_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([(80.0, math.nan), (81.0, 3.0)])
