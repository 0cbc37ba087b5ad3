"""Which training items look mislabelled, from out-of-sample probabilities.

* ``confident``: confident learning (Northcutt et al. 2021) as cleanlab implements it
  (``find_label_issues``, pruned by noise rate, ranked by self-confidence);
* ``loss``: the items with the highest cross-entropy of their given label, as many as cleanlab
  estimates are mislabelled (``num_label_issues``), so it differs from ``confident`` only in
  how it picks them;
* ``ensemble``: the items whose given label most ensemble members' predictions disagree with
  (a majority), ranked by that share and then by loss.

With several members, ``confident`` and ``loss`` use the members' mean probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("confident", "loss", "ensemble")


@dataclass(frozen=True)
class Ranking:
    """A method's verdict.

    Attributes:
        flagged: positions of the suspected items, most suspect first.
        order: every item's position, most suspect first.
        score: every item's suspicion, higher is more suspect (in [0, 1] except for ``loss``).
        predicted: every item's predicted label (argmax of the mean probabilities).
    """

    flagged: np.ndarray
    order: np.ndarray
    score: np.ndarray
    predicted: np.ndarray


def rank(method: str, labels: np.ndarray, member_probs: np.ndarray) -> Ranking:
    """Ranks suspected label errors.

    Args:
        method: one of :data:`METHODS`.
        labels: given labels (N).
        member_probs: out-of-sample probabilities, members x N x classes.
    """
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues

    probs = member_probs.mean(0)
    probs = probs / probs.sum(1, keepdims=True)
    rows = np.arange(len(labels))
    given = probs[rows, labels]
    loss = -np.log(np.clip(given, 1e-12, None))
    predicted = probs.argmax(1)
    by_loss = np.argsort(-loss, kind="stable")
    if method == "confident":
        flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
        return Ranking(np.asarray(flagged, np.int64), by_loss, 1.0 - given, predicted)
    if method == "loss":
        count = int(num_label_issues(labels, probs))
        return Ranking(by_loss[:count], by_loss, loss, predicted)
    if method == "ensemble":
        disagree = (member_probs.argmax(2) != labels[None]).mean(0)
        order = np.lexsort((-loss, -disagree))
        return Ranking(order[disagree[order] > 0.5], order, disagree, predicted)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def detection(ranking: Ranking, flipped: np.ndarray) -> dict[str, float | int | None]:
    """Precision and recall of the flagged items against the items known to be flipped, and the
    precision of the method's top as many items as were flipped (at the true noise rate)."""
    truth = set(np.flatnonzero(flipped).tolist())
    found = [int(i) for i in ranking.flagged]
    hits = sum(i in truth for i in found)
    top = [int(i) for i in ranking.order[: len(truth)]]
    return {
        "flipped": len(truth),
        "flagged": len(found),
        "true_positives": hits,
        "precision": hits / len(found) if found else None,
        "recall": hits / len(truth) if truth else None,
        "precision_at_noise_rate": (sum(i in truth for i in top) / len(top)) if top else None,
    }
