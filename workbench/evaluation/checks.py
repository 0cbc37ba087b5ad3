"""Honesty checks of a robustness evaluation: each a named pass/fail with the measured value.

A robust accuracy is only believable when the attack behind it worked. These checks look for
the usual signs that it did not (Carlini et al. 2019, "On Evaluating Adversarial Robustness";
Athalye et al. 2018 on gradient masking):

* ``sweep_monotone``: robust accuracy never rises with epsilon (a larger ball holds every point
  of a smaller one);
* ``chance_at_large_eps``: with a ball large enough to reach a grey image, accuracy falls to
  chance or below;
* ``budget_stable``: another run of the strongest attack with twice the steps and restarts
  lowers the reported robust accuracy by little;
* ``whitebox_beats_blackbox``: no example is broken by the black-box attack but by no white-box
  attack;
* ``gradients_finite``: input gradients of the loss are finite and non-zero;
* ``reverified``: every final adversarial example, passed once more through the model, gives
  the reported prediction and lies inside the threat model's ball.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Check:
    """The outcome of one honesty check.

    Attributes:
        name: short identifier (``sweep_monotone``, ...).
        passed: True, False, or None when the check could not run (``detail`` says why).
        value: the measured number the verdict rests on.
        threshold: what the value is compared with, in words.
        detail: one sentence for the report.
    """

    name: str
    passed: bool | None
    value: float | None
    threshold: str
    detail: str

    @property
    def status(self) -> str:
        """``PASS``, ``FAIL`` or ``SKIP``."""
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]

    def line(self) -> str:
        """Returns the check as one report line."""
        value = "" if self.value is None else f" (value {self.value:.4g}; {self.threshold})"
        return f"{self.status} {self.name}{value}: {self.detail}"

    def to_dict(self) -> dict:
        """Returns the check as a JSON-ready dict (with ``status``)."""
        return {**asdict(self), "status": self.status}


def skipped(name: str, reason: str) -> Check:
    """Returns a check that could not run, with the reason."""
    return Check(name, None, None, "", reason)


def sweep_monotone(
    eps: Sequence[float], curves: Mapping[str, Sequence[float]], n: int, slack: int = 1
) -> Check:
    """Robust accuracy must not rise with epsilon, for any attack.

    Args:
        eps: the epsilons of the sweep.
        curves: name -> robust accuracy at each epsilon (same order as ``eps``).
        n: examples per point; a rise of up to ``slack`` examples is allowed (random starts).
        slack: examples of tolerance per step.
    """
    order = sorted(range(len(eps)), key=lambda i: eps[i])
    worst_rise, where = 0.0, ""
    for name, accs in curves.items():
        ordered = [accs[i] for i in order]
        for i in range(1, len(ordered)):
            rise = ordered[i] - min(ordered[:i])
            if rise > worst_rise:
                worst_rise, where = rise, f"{name} at eps {eps[order[i]]:g}"
    tolerance = slack / max(n, 1)
    if len(eps) < 2:
        return skipped("sweep_monotone", "needs at least two epsilons")
    passed = worst_rise <= tolerance + 1e-12
    detail = (
        "robust accuracy never rises with epsilon"
        if passed
        else f"robust accuracy rises by {worst_rise:.4f} ({where}): the attack misses points "
        "it finds with a smaller ball"
    )
    return Check("sweep_monotone", passed, worst_rise, f"largest rise <= {tolerance:.4g}", detail)


def chance_at_large_eps(accuracy: float, eps: float, num_classes: int, n: int) -> Check:
    """At a large epsilon the attack must drive accuracy to chance (``1 / num_classes``) or
    below (one example of slack)."""
    chance = 1.0 / num_classes
    limit = chance + 1.0 / max(n, 1)
    passed = accuracy <= limit + 1e-12
    detail = (
        f"accuracy {accuracy:.4f} at eps {eps:g} is at or below chance ({chance:.4f})"
        if passed
        else f"accuracy {accuracy:.4f} at eps {eps:g} stays above chance ({chance:.4f}): "
        "the attack fails where any image is reachable (gradient masking?)"
    )
    return Check("chance_at_large_eps", passed, accuracy, f"<= {limit:.4g}", detail)


def budget_stable(
    accuracy: float, doubled: float, attack: str, eps: float, n: int, tolerance: float = 0.02
) -> Check:
    """The reported robust accuracy may drop only a little (``tolerance`` plus one example) when
    ``attack`` runs once more, with twice the steps and restarts, on the points left standing.

    Args:
        accuracy: the reported (worst-case) robust accuracy.
        doubled: the robust accuracy after the doubled attack.
        attack: the attack that was doubled.
        eps: the epsilon of both.
        n: examples.
        tolerance: allowed change, as a fraction.
    """
    change = abs(accuracy - doubled)
    limit = tolerance + 1.0 / max(n, 1)
    passed = change <= limit + 1e-12
    detail = (
        f"at eps {eps:g}: {accuracy:.4f} -> {doubled:.4f} after {attack} with twice the steps "
        "and restarts on the points left standing"
        + ("" if passed else "; the evaluation has not converged, raise --steps")
    )
    return Check("budget_stable", passed, change, f"|change| <= {limit:.4g}", detail)


def whitebox_beats_blackbox(
    white_robust: Tensor, black_robust: Tensor, eps: float, tolerance: float = 0.01
) -> Check:
    """Counts examples that the black-box attack breaks but every white-box attack misses.

    Args:
        white_robust: bool per example, True where every white-box attack failed.
        black_robust: bool per example, True where the black-box attack failed.
        eps: the epsilon both were run at.
        tolerance: allowed fraction of such examples (black-box search is random).
    """
    violations = int((white_robust & ~black_robust).sum())
    fraction = violations / max(len(white_robust), 1)
    passed = fraction <= tolerance + 1e-12
    detail = (
        f"at eps {eps:g}, {violations} of {len(white_robust)} examples are broken by the "
        "black-box attack and missed by every white-box attack"
        + ("" if passed else " (gradient masking?)")
    )
    return Check("whitebox_beats_blackbox", passed, fraction, f"<= {tolerance:.4g}", detail)


def gradients_finite(
    model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, min_nonzero: float = 0.95
) -> Check:
    """The input gradient of the cross-entropy must be finite everywhere and non-zero for
    at least ``min_nonzero`` of the examples (zero gradients starve gradient attacks)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    finite = bool(torch.isfinite(grad).all())
    norms = grad.flatten(1).abs().sum(1)
    nonzero = float((norms > 0).float().mean())
    passed = finite and nonzero >= min_nonzero
    if not finite:
        detail = "the input gradient holds NaN or inf values"
    elif passed:
        detail = f"{nonzero:.1%} of examples have a non-zero, finite input gradient"
    else:
        detail = (
            f"only {nonzero:.1%} of examples have a non-zero input gradient "
            "(gradient masking: gradient attacks cannot work)"
        )
    return Check("gradients_finite", passed, nonzero, f">= {min_nonzero:g} non-zero", detail)


def reverified(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    reported_robust: Tensor,
    distance: Callable[[Tensor, Tensor], Tensor],
    eps: float,
    batch_size: int = 256,
    tol: float = 1e-5,
) -> Check:
    """Passes the final adversarial examples through the model once more.

    Fails when a fresh prediction disagrees with the reported outcome, when an example lies
    outside the ball (``distance > eps + tol``) or the [0, 1] box, or when a value is not finite.
    """
    fresh = []
    with torch.no_grad():
        for start in range(0, len(x_adv), batch_size):
            logits = model(x_adv[start : start + batch_size])
            fresh.append(logits.argmax(1) == y[start : start + batch_size])
    fresh_robust = torch.cat(fresh) if fresh else torch.zeros(0, dtype=torch.bool)
    mismatches = int((fresh_robust != reported_robust.to(fresh_robust.device)).sum())
    over = float((distance(x_adv, x) - eps).max()) if len(x) else -math.inf
    outside_box = bool(((x_adv < -tol) | (x_adv > 1 + tol)).any())
    finite = bool(torch.isfinite(x_adv).all())
    passed = mismatches == 0 and over <= tol and not outside_box and finite
    problems = []
    if mismatches:
        problems.append(f"{mismatches} fresh predictions disagree with the reported outcome")
    if over > tol:
        problems.append(f"an example lies {over:.3g} outside the eps ball")
    if outside_box:
        problems.append("an example leaves the [0, 1] box")
    if not finite:
        problems.append("an example holds NaN or inf")
    detail = (
        f"at eps {eps:g}, all {len(x)} final examples give the reported outcome on a fresh "
        "forward pass and lie inside the ball"
        if passed
        else f"at eps {eps:g}: " + "; ".join(problems)
    )
    return Check("reverified", passed, float(mismatches), "0 mismatches, inside the ball", detail)
