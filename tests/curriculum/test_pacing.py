"""Pacing functions, rankings and pools on hand-made scores."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from workbench.curriculum import ORDERS, PACINGS, pacing_fraction, ranking, select_pool

SCORES = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])


@pytest.mark.parametrize("shape", sorted(PACINGS))
@pytest.mark.parametrize("start, full_at", [(0.2, 0.8), (0.05, 0.5), (0.5, 1.0)])
def test_pacing_starts_at_start_reaches_one_at_full_at_and_never_shrinks(shape, start, full_at):
    assert pacing_fraction(shape, 0.0, start, full_at) == pytest.approx(start)
    assert pacing_fraction(shape, full_at, start, full_at) == 1.0
    assert pacing_fraction(shape, 1.0, start, full_at) == 1.0
    grid = [pacing_fraction(shape, t, start, full_at) for t in np.linspace(0, 1, 101)]
    assert (
        all(b >= a for a, b in itertools.pairwise(grid)) and start <= min(grid) and max(grid) == 1
    )


def test_pacing_shapes_differ_as_parametrised():
    half = {shape: pacing_fraction(shape, 0.4, 0.0, 0.8) for shape in PACINGS}
    assert half["linear"] == pytest.approx(0.5)
    assert half["root"] == pytest.approx(math.sqrt(0.5))
    assert half["quadratic"] == pytest.approx(0.25)
    assert half["exponential"] == pytest.approx(math.expm1(5) / math.expm1(10))
    assert half["step"] == 0.0  # the start share until full_at, then everything
    assert half["root"] > half["linear"] > half["quadratic"] > half["exponential"] > half["step"]


def test_full_at_zero_is_no_curriculum_and_beyond_one_never_fills():
    assert pacing_fraction("linear", 0.0, 0.1, 0.0) == 1.0
    assert pacing_fraction("linear", 1.0, 0.0, 2.0) == pytest.approx(0.5)


def test_easy_first_hard_first_and_random_pools():
    easy = select_pool(SCORES, ranking(SCORES, "easy_first", 0), 0.3, "easy_first")
    assert easy.indices.tolist() == [1, 5, 9] and easy.threshold == pytest.approx(0.2)
    hard = select_pool(SCORES, ranking(SCORES, "hard_first", 0), 0.3, "hard_first")
    assert hard.indices.tolist() == [2, 4, 6] and hard.threshold == pytest.approx(0.7)
    pools = {
        tuple(select_pool(SCORES, ranking(SCORES, "random", seed), 0.3, "random").indices)
        for seed in range(20)
    }
    assert all(len(p) == 3 for p in pools) and len(pools) > 5  # the same pacing, random content
    again = select_pool(SCORES, ranking(SCORES, "random", 3), 0.3, "random")
    assert again.indices.tolist() == sorted(ranking(SCORES, "random", 3)[:3])
    assert math.isnan(again.threshold)
    for order in ORDERS:  # the whole set at fraction 1, a non-empty pool at a tiny fraction
        assert len(select_pool(SCORES, ranking(SCORES, order, 0), 1.0, order).indices) == 10
        assert len(select_pool(SCORES, ranking(SCORES, order, 0), 1e-6, order).indices) == 1


def test_ties_are_broken_at_random_not_by_index():
    scores = np.zeros(1000)
    pool = select_pool(scores, ranking(scores, "easy_first", 0), 0.1, "easy_first").indices
    assert len(pool) == 100 and pool.max() > 500  # not just the first indices
    assert not np.array_equal(ranking(scores, "easy_first", 0), ranking(scores, "easy_first", 1))


def test_class_balanced_pool_keeps_every_class():
    labels = np.repeat([0, 1, 2], 10)
    scores = labels + np.tile(np.linspace(0, 0.5, 10), 3)  # class 2 hardest, class 0 easiest
    ranked = ranking(scores, "easy_first", 0)
    plain = select_pool(scores, ranked, 0.3, "easy_first")
    assert set(labels[plain.indices]) == {0}  # a plain pool starves the hard classes
    balanced = select_pool(scores, ranked, 0.3, "easy_first", labels)
    assert np.bincount(labels[balanced.indices]).tolist() == [3, 3, 3]
    for c in range(3):  # each class admits its own easiest items
        assert set(balanced.indices[labels[balanced.indices] == c]) == {
            10 * c,
            10 * c + 1,
            10 * c + 2,
        }
    assert balanced.threshold == pytest.approx(scores[22])
    tiny = select_pool(scores, ranked, 0.01, "easy_first", labels)
    assert np.bincount(labels[tiny.indices]).tolist() == [1, 1, 1]
