"""Statistics of results over seeds: mean, sample standard deviation and n; paired differences
between arms with a Student-t interval; targets decided on that interval.

Every function takes plain lists of numbers (one per seed, in seed order), so the README's
tables can be recomputed from the per-seed ``values`` that every study writes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

CONFIDENCE = 0.95
STD = "sample standard deviation (n - 1)"
PAIRED = "paired differences over seeds, Student t interval"
RULE_INTERVAL = (
    "interval: met when the whole 95% Student t interval clears the target, missed when it "
    "lies entirely on the wrong side, inconclusive otherwise"
)
RULE_POINT = "point estimate: one measurement, no interval; met or missed by the estimate alone"
DIRECTIONS = (">=", ">", "<=", "<")


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Returns the mean, the sample standard deviation (None below two values), n and the values.

    Raises:
        ValueError: no values.
    """
    if not values:
        raise ValueError("summary of no values")
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
        "values": values,
    }


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> list[float] | None:
    """Returns the Student t interval ``[low, high]`` of the mean of ``values`` (None below two
    values): mean -/+ t(confidence, n - 1) * s / sqrt(n)."""
    if len(values) < 2:
        return None
    from scipy.stats import t

    s = summary(values)
    half = float(t.ppf((1 + confidence) / 2, s["n"] - 1)) * s["std"] / math.sqrt(s["n"])
    return [s["mean"] - half, s["mean"] + half]


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """Returns the summary of ``a[i] - b[i]`` (the same seed in both arms) with its interval.

    Raises:
        ValueError: the arms have different numbers of seeds.
    """
    if len(a) != len(b):
        raise ValueError(f"paired difference of {len(a)} and {len(b)} values; pair them by seed")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    return {
        **summary(diffs),
        "interval": interval(diffs, confidence),
        "confidence": confidence,
        "method": PAIRED,
    }


def decide(
    values: Sequence[float],
    threshold: float,
    direction: str = ">=",
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Decides the target ``mean(values) <direction> threshold``.

    With two or more values the decision is taken on the Student t interval of the mean
    (:data:`RULE_INTERVAL`); one value is a single measurement, decided by itself
    (:data:`RULE_POINT`). The result says which rule was used.

    Raises:
        ValueError: an unknown direction, or no values.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    s = summary(values)
    bounds = interval(values, confidence)
    low, high = bounds or (s["mean"], s["mean"])
    holds = {
        ">=": lambda v: v >= threshold,
        ">": lambda v: v > threshold,
        "<=": lambda v: v <= threshold,
        "<": lambda v: v < threshold,
    }[direction]
    worst, best = (low, high) if direction in (">=", ">") else (high, low)
    decision = "met" if holds(worst) else "missed" if not holds(best) else "inconclusive"
    return {
        "estimate": s["mean"],
        "n": s["n"],
        "interval": bounds,
        "confidence": confidence if bounds else None,
        "target": f"{direction} {threshold:g}",
        "decision": decision,
        "rule": RULE_INTERVAL if bounds else RULE_POINT,
    }


def pct(values: Sequence[float]) -> str:
    """Formats values in [0, 1] as ``mean ± std`` in percent (the mean alone for one value)."""
    s = summary(values)
    if s["std"] is None:
        return f"{100 * s['mean']:.1f}"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def points(difference: dict[str, Any]) -> str:
    """Formats a paired difference of values in [0, 1] in percentage points, with its interval."""
    text = f"{100 * difference['mean']:+.1f}"
    if difference["interval"] is None:
        return text
    low, high = difference["interval"]
    return f"{text} [{100 * low:+.1f}, {100 * high:+.1f}]"


def verdict(decided: dict[str, Any]) -> str:
    """A decision in Markdown: ``met``, or ``**missed**`` / ``**inconclusive**`` in bold."""
    return decided["decision"] if decided["decision"] == "met" else f"**{decided['decision']}**"


def target_table(decided: list[dict[str, Any]]) -> list[str]:
    """Returns Markdown lines: the decided targets (each a :func:`decide` result with ``name``
    and ``difference``; values in [0, 1] shown in percent, differences in points) and the rule
    or rules used."""
    rules = list(dict.fromkeys(t["rule"] for t in decided))
    lines = [
        "Targets (rule: " + "; ".join(rules) + "):",
        "",
        "| target | estimate | 95% interval | n | decision |",
        "|---|---|---|---|---|",
    ]
    for t in decided:
        fmt = "{:+.1f}" if t["difference"] else "{:.1f}"
        bounds = t["interval"]
        shown = (
            "[" + ", ".join(fmt.format(100 * b) for b in bounds) + "]" if bounds else "none (n = 1)"
        )
        decision = t["decision"] if t["decision"] == "met" else f"**{t['decision']}**"
        lines.append(
            f"| {t['name']} | {fmt.format(100 * t['estimate'])} | {shown} | {t['n']} | {decision} |"
        )
    return lines


def table_by_k(
    columns: Sequence[str], ks: Sequence[Any], cell: Callable[[Any, str], str]
) -> list[str]:
    """Markdown lines of a table with a row per number of labels per class ``k`` and a column
    per name in ``columns``; ``cell(k, column)`` fills each cell."""
    return [
        "| k labels per class | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
        *(f"| {k} | " + " | ".join(cell(k, column) for column in columns) + " |" for k in ks),
    ]
