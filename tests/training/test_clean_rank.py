"""The three rankings of ``workbench clean`` and their scoring, on planted label errors."""

import numpy as np
import pytest

from workbench.training.cleaning.rank import detection, rank


def planted(n=400, classes=5, flipped=40, members=3, seed=0):
    """Out-of-sample probabilities that favour the true class, and given labels with the first
    ``flipped`` items moved to another class."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    alpha = np.ones((n, classes))
    alpha[np.arange(n), true] = 30.0
    probs = np.stack([np.array([rng.dirichlet(a) for a in alpha]) for _ in range(members)])
    given = true.copy()
    given[:flipped] = (true[:flipped] + rng.integers(1, classes, flipped)) % classes
    return given, probs, given != true


@pytest.mark.parametrize("method", ["confident", "loss", "ensemble"])
def test_each_method_finds_the_planted_errors(method):
    given, probs, flipped = planted()
    ranking = rank(method, given, probs)
    found = detection(ranking, flipped)
    assert found["flipped"] == 40
    assert found["precision"] > 0.9 and found["recall"] > 0.8, found
    assert found["precision_at_noise_rate"] > 0.9
    assert sorted(ranking.order.tolist()) == list(range(len(given)))  # every item, once
    # the flagged items come in the order of the method's score
    assert (np.diff(ranking.score[ranking.flagged]) <= 1e-12).all()


def test_loss_flags_as_many_as_cleanlab_estimates_ranked_by_loss():
    from cleanlab.count import num_label_issues

    given, probs, _ = planted(members=1)
    ranking = rank("loss", given, probs)
    assert len(ranking.flagged) == num_label_issues(given, probs.mean(0))
    loss = -np.log(probs[0][np.arange(len(given)), given])
    assert np.allclose(ranking.score, loss)
    assert loss[ranking.flagged].min() >= np.delete(loss, ranking.flagged).max()


def test_ensemble_flags_what_a_majority_of_members_disagrees_with():
    given = np.array([0, 0, 1, 1])
    # members' predictions: item 0 all agree with 0; item 1: 2 of 3 say 1; item 2: 1 of 3 say 0;
    # item 3: all say 0
    predicted = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    probs = np.eye(2)[predicted] * 0.8 + 0.1
    ranking = rank("ensemble", given, probs)
    assert ranking.flagged.tolist() == [3, 1]
    assert ranking.score.tolist() == pytest.approx([0.0, 2 / 3, 1 / 3, 1.0])


def test_detection_counts():
    given, probs, flipped = planted()
    ranking = rank("confident", given, probs)
    found = detection(ranking, flipped)
    hits = int(flipped[ranking.flagged].sum())
    assert found["true_positives"] == hits
    assert found["precision"] == hits / len(ranking.flagged)
    assert found["recall"] == hits / 40
