"""Pacing functions and pools: which part of the ranked training set is available when.

A pacing function ``g(t)`` gives the fraction of the training set available at training
progress ``t = epoch / max_epochs``. It is parametrised as in Wu, Dyer & Neyshabur (2021, "When
do curricula work?"): ``start`` (their *b*) is the fraction at ``t = 0`` and ``full_at`` (their
*a*) the progress at which the whole set is reached. With ``x = t / full_at``::

    linear       start + (1 - start) * x
    root         start + (1 - start) * sqrt(x)
    quadratic    start + (1 - start) * x ** 2
    exponential  start + (1 - start) * (exp(10 x) - 1) / (exp(10) - 1)
    step         start + (1 - start) * floor(x)      (start until full_at, then everything)

and 1 from ``t = full_at`` on. ``full_at > 1`` never reaches the whole set within training;
``full_at = 0`` is no curriculum.

The pool at progress ``t`` is the first ``ceil(g(t) * N)`` items of a ranking of the scores:
``easy_first`` (curriculum, lowest score first), ``hard_first`` (anti-curriculum) or ``random``
(a random ranking with the same pacing, the control). Ties are broken by a random key from the
seed, so equal scores never favour low indices (an ImageFolder lists its items class by class).
With ``class_balanced`` the pool takes the same fraction of every class's own ranking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workbench.rng import stream

PACINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "root": math.sqrt,
    "quadratic": lambda x: x * x,
    "exponential": lambda x: math.expm1(10 * x) / math.expm1(10),
    "step": math.floor,
}
ORDERS = ("easy_first", "hard_first", "random")


def pacing_fraction(shape: str, t: float, start: float, full_at: float) -> float:
    """Returns ``g(t)``, the fraction of the training set available at progress ``t``.

    Args:
        shape: a key of :data:`PACINGS`.
        t: training progress, ``epoch / max_epochs``.
        start: the fraction at ``t = 0``, in (0, 1].
        full_at: the progress from which the whole set is available, >= 0.
    """
    if t >= full_at:
        return 1.0
    return min(1.0, start + (1.0 - start) * PACINGS[shape](max(t, 0.0) / full_at))


def ranking(scores: np.ndarray, order: str, seed: int) -> np.ndarray:
    """Returns the item indices in the order the pool admits them.

    Args:
        scores: one difficulty per item, higher = harder.
        order: ``easy_first``, ``hard_first`` or ``random``.
        seed: seed of the tie-breaking key (and of the ``random`` ranking).
    """
    key = stream(seed, 0, "curriculum/ranking").random(len(scores))
    if order == "random":
        return np.argsort(key, kind="stable")
    primary = np.asarray(scores, float) if order == "easy_first" else -np.asarray(scores, float)
    return np.lexsort((key, primary))


def _count(fraction: float, n: int) -> int:
    return min(n, max(1, math.ceil(round(fraction * n, 9))))


@dataclass(frozen=True)
class Pool:
    """The items available in one epoch.

    Attributes:
        indices: training-set indices, sorted.
        threshold: the score cut-off: the highest admitted score for ``easy_first``, the lowest
            for ``hard_first``, NaN for the ``random`` ranking (no cut-off).
    """

    indices: np.ndarray
    threshold: float


def select_pool(
    scores: np.ndarray,
    ranked: np.ndarray,
    fraction: float,
    order: str,
    labels: np.ndarray | None = None,
) -> Pool:
    """Returns the pool of the first ``fraction`` of a ranking.

    Args:
        scores: one difficulty per item.
        ranked: item indices in admission order, from :func:`ranking`.
        fraction: the share to admit, from :func:`pacing_fraction`.
        order: the ranking's order (for the threshold).
        labels: class of every item; given, every class admits its own ``fraction`` (at least
            one item each), so no class is starved.
    """
    if labels is None:
        chosen = ranked[: _count(fraction, len(ranked))]
    else:
        ranked_labels = labels[ranked]
        chosen = np.concatenate(
            [
                members[: _count(fraction, len(members))]
                for members in (ranked[ranked_labels == c] for c in np.unique(labels))
            ]
        )
    admitted = np.asarray(scores, float)[chosen]
    if order == "random":
        threshold = math.nan
    else:
        threshold = float(admitted.max() if order == "easy_first" else admitted.min())
    return Pool(np.sort(chosen), threshold)
