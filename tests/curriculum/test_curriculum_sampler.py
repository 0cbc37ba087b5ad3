"""The curriculum sampler: draws from the pool only, determinism, DDP shares, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DistributedSampler

from workbench.curriculum import CurriculumConfig, CurriculumSampler
from workbench.errors import WorkbenchError

N = 40
SCORES = np.random.default_rng(0).permutation(N) / N
LABELS = np.arange(N) % 4


def make(seed: int = 5, scores=SCORES, **options) -> CurriculumSampler:
    config = CurriculumConfig.from_dict({"scorer": "random", "start": 0.25, **options})
    return CurriculumSampler(np.ones(N), 200, seed, 4, config, LABELS, scores=scores)


def test_draws_only_from_the_pool_and_the_pool_grows():
    sampler = make(full_at=0.75)
    assert isinstance(sampler, DistributedSampler) and len(sampler) == 200
    sizes = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        pool = sampler.pool()
        draws = list(sampler)
        assert len(draws) == 200 and set(draws) <= set(pool.indices.tolist())
        assert pool.threshold == pytest.approx(SCORES[pool.indices].max())
        sizes.append(len(pool.indices))
    assert sizes == [10, 20, 30, 40]
    sampler.set_epoch(0)
    assert set(sampler) == set(np.argsort(SCORES)[:10].tolist())  # the easiest quarter, all drawn


def test_draws_are_deterministic_in_seed_and_epoch():
    a, b = make(), make()
    for epoch in (0, 2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b)
    a.set_epoch(3)
    b.set_epoch(2)
    assert list(a) != list(b)
    assert list(make(seed=6)) != list(make(seed=5))


def test_ddp_ranks_take_disjoint_shares_of_the_draws():
    full = list(make())
    shares = []
    for rank in (0, 1):
        sampler = make()
        sampler.num_replicas, sampler.rank, sampler.num_samples = 2, rank, 100
        shares.append(list(sampler))
        assert len(shares[-1]) == 100
    assert shares[0] == full[0::2] and shares[1] == full[1::2]


def test_balance_classes_within_the_pool():
    config = CurriculumConfig.from_dict({"scorer": "random", "start": 0.5, "full_at": 1.0})
    scores = np.where(LABELS == 0, 0.0, 1.0) + SCORES / 10  # class 0 easiest: 10 of the 20
    weights = np.ones(N)
    balanced = CurriculumSampler(weights, 20_000, 0, 4, config, LABELS, True, scores)
    present = np.unique(LABELS[balanced.pool().indices])
    counts = np.bincount(LABELS[list(balanced)], minlength=4)[present]
    assert counts == pytest.approx(np.full(len(present), 20_000 / len(present)), rel=0.1)
    plain = CurriculumSampler(weights, 20_000, 0, 4, config, LABELS, False, scores)
    assert np.bincount(LABELS[list(plain)], minlength=4)[0] == pytest.approx(10_000, rel=0.05)


def test_state_dict_round_trip_continues_exactly():
    a = make(order="hard_first", class_balanced=True)
    a.set_scores(SCORES[::-1].copy(), 2)
    a.set_epoch(2)
    state = a.state_dict()
    assert state["epoch"] == 2 and state["scored_epoch"] == 2
    assert state["pool_size"] == len(a.pool().indices) and state["threshold"] == a.pool().threshold
    b = make(order="hard_first", class_balanced=True, scores=None)
    b.load_state_dict(state)
    assert b.epoch == 2 and b.scored_epoch == 2 and np.array_equal(b.scores, a.scores)
    assert list(b) == list(a)


def test_restoring_another_schedule_warns_and_another_training_set_fails():
    state = make().state_dict()
    with pytest.warns(UserWarning, match="max_epochs or data.curriculum changed"):
        make(start=0.5).load_state_dict(state)
    config = CurriculumConfig.from_dict({"scorer": "random"})
    smaller = CurriculumSampler(np.ones(N - 1), 20, 0, 4, config, LABELS[:-1])
    with pytest.raises(WorkbenchError, match="the training set changed"):
        smaller.load_state_dict(state)


def test_without_scores_it_names_the_datamodule():
    config = CurriculumConfig.from_dict({"scorer": "loss"})
    sampler = CurriculumSampler(np.ones(N), 20, 0, 4, config, LABELS)
    with pytest.raises(WorkbenchError, match="no scores yet; the CurriculumDataModule"):
        list(sampler)
    with pytest.raises(WorkbenchError, match="max_epochs"):
        CurriculumSampler(np.ones(N), 20, 0, None, config, LABELS)
