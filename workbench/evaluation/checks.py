"""Honesty checks of a robustness evaluation: each a named PASS, FAIL or SKIP with the measured
value.

A robust accuracy is only believable when the attack behind it worked. These checks look for
the usual signs that it did not (Carlini et al. 2019, "On Evaluating Adversarial Robustness";
Athalye et al. 2018 on gradient masking), AutoAttack's own flags among them (Croce & Hein 2020,
``autoattack/checks.py`` and ``flags_doc.md``):

* ``randomised``: repeated identical forward passes give the same logits (a randomised defence
  needs EOT: ``--cascade rand``);
* ``softmax_output``: the model returns logits, not probabilities (rows that are non-negative
  and sum to 1 flatten the attacks' losses);
* ``gradients_finite``: input gradients of the margin loss are finite and non-zero for nearly
  every example (zero gradients starve gradient attacks);
* ``sweep_monotone``: robust accuracy never rises with epsilon (a larger ball holds every point
  of a smaller one);
* ``chance_at_large_eps``: with a ball large enough to reach a grey image, accuracy falls to
  chance or below;
* ``budget_stable``: another run of the strongest attack with twice the steps and restarts
  lowers the reported robust accuracy by little;
* ``whitebox_beats_blackbox``: no example is broken by the black-box Square attack but by no
  white-box attack; it passes only when Square had at least :data:`MIN_SQUARE_QUERIES` queries;
* ``reverified``: an independent recomputation (a fresh float64 copy of the model, another
  batch size, another order) agrees on every example's outcome, and every final adversarial
  example lies inside the threat model's ball.

A check whose budget is too small to mean anything is a SKIP with the reason, never a PASS.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.adversarial.attacks.base import margin_loss
from workbench.adversarial.model import attack_mode

# AutoAttack's tolerances: logits (scaled to unit norm) of repeated passes, probability rows
RANDOM_TOL = 1e-4
PROBABILITY_TOL = 1e-5
# the fewest Square queries per example for "no black-box success" to mean anything
MIN_SQUARE_QUERIES = 1000
# at most this many example ids are named in a check's detail
NAMED_IDS = 10


@dataclass
class Check:
    """The outcome of one honesty check.

    Attributes:
        name: short identifier (``sweep_monotone``, ...).
        passed: True, False, or None when the check could not run or its budget was too small
            to mean anything (``detail`` says why).
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
    white_robust: Tensor,
    black_robust: Tensor,
    eps: float,
    queries: int | None = None,
    tolerance: float = 0.01,
) -> Check:
    """Counts examples that the black-box attack breaks but every white-box attack misses
    (AutoAttack's "Square improves on white-box" flag).

    Black-box successes fail the check whatever the budget; their absence is a PASS only when
    Square had at least :data:`MIN_SQUARE_QUERIES` queries per example (a few hundred queries
    rarely break anything, so they would pass almost trivially), a SKIP otherwise.

    Args:
        white_robust: bool per example, True where every white-box attack failed.
        black_robust: bool per example, True where the black-box attack failed.
        eps: the epsilon both were run at.
        queries: Square's queries per example (None when unknown: no PASS).
        tolerance: allowed fraction of such examples (black-box search is random).
    """
    violations = int((white_robust & ~black_robust).sum())
    fraction = violations / max(len(white_robust), 1)
    threshold = f"<= {tolerance:.4g} with >= {MIN_SQUARE_QUERIES} queries"
    found = (
        f"at eps {eps:g}, {violations} of {len(white_robust)} examples are broken by the "
        "black-box attack and missed by every white-box attack"
    )
    budget = "an unknown number of" if queries is None else str(queries)
    if fraction > tolerance + 1e-12:
        detail = f"{found} (gradient masking?; Square had {budget} queries)"
        return Check("whitebox_beats_blackbox", False, fraction, threshold, detail)
    if queries is None or queries < MIN_SQUARE_QUERIES:
        detail = (
            f"{found}, but Square had {budget} queries, too few to show it: a PASS needs "
            f">= {MIN_SQUARE_QUERIES} (--budget standard)"
        )
        return Check("whitebox_beats_blackbox", None, fraction, threshold, detail)
    detail = f"{found} (Square with {queries} queries)"
    return Check("whitebox_beats_blackbox", True, fraction, threshold, detail)


def _ids(mask: Tensor) -> str:
    """Returns the positions where ``mask`` is True, the first :data:`NAMED_IDS` of them."""
    ids = mask.nonzero().flatten().tolist()
    named = ", ".join(map(str, ids[:NAMED_IDS]))
    return named + (f" and {len(ids) - NAMED_IDS} more" if len(ids) > NAMED_IDS else "")


def randomised(
    model: nn.Module,
    x: Tensor,
    passes: int = 5,
    tol: float = RANDOM_TOL,
    eot: bool = False,
) -> Check:
    """Runs ``passes`` identical forward passes on ``x``: the predictions, and the logits scaled
    to unit norm, must not change (AutoAttack's randomised-defence flag).

    Args:
        model: the classifier (B x K logits), in the mode the attacks use.
        x: a batch of images.
        passes: forward passes compared (at least two).
        tol: largest allowed L2 difference between two passes' unit-norm logits.
        eot: the evaluation already averages gradients over the randomness (``--cascade
            rand``): a randomised model then passes, named as such.
    """
    with torch.no_grad():
        outputs = [model(x).double() for _ in range(max(passes, 2))]
    scaled = [o / (o.flatten(1).norm(dim=1, keepdim=True) + 1e-10) for o in outputs]
    spread = max(float((a - b).norm(dim=1).max()) for a in scaled for b in scaled)
    changed = torch.stack([o.argmax(1) != outputs[0].argmax(1) for o in outputs]).any(0)
    random = spread > tol or bool(changed.any())
    passed = not random or eot
    if not random:
        detail = f"{len(outputs)} identical forward passes give the same logits"
    else:
        detail = (
            f"{len(outputs)} identical forward passes differ (unit-norm logits by up to "
            f"{spread:.3g}; predictions of {int(changed.sum())} of {len(x)} examples change)"
        )
        detail += (
            ": a randomised model, evaluated with EOT as it needs"
            if eot
            else ": a randomised defence misleads standard attacks; use --cascade rand (EOT)"
        )
    return Check("randomised", passed, spread, f"<= {tol:g} unless EOT", detail)


def softmax_output(model: nn.Module, x: Tensor, tol: float = PROBABILITY_TOL) -> Check:
    """Fails when every output row is non-negative and sums to 1: the model returns
    probabilities, whose saturation flattens the attacks' losses (AutoAttack's softmax flag).

    Args:
        model: the classifier, in the mode the attacks use.
        x: a batch of images.
        tol: tolerance of the non-negativity and of the row sums.
    """
    with torch.no_grad():
        out = model(x).double()
    rows = (out.min(dim=1).values > -tol) & ((out.sum(dim=1) - 1).abs() < tol)
    share = float(rows.float().mean()) if len(out) else 0.0
    passed = not (len(out) and bool(rows.all()))
    detail = (
        "the model returns logits (rows are not probability distributions)"
        if passed
        else f"all {len(out)} output rows are non-negative and sum to 1: the model returns "
        "probabilities, not logits; remove its final softmax"
    )
    return Check("softmax_output", passed, share, "not every row a probability vector", detail)


def gradients_finite(
    model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, min_nonzero: float = 0.95
) -> Check:
    """The input gradient of the margin loss (``max_{i != y} z_i - z_y``; scale-free like
    AutoAttack's DLR, so a saturated softmax is not mistaken for masking) and of the
    cross-entropy must be finite everywhere, and the margin's non-zero for at least
    ``min_nonzero`` of the examples (AutoAttack's zero-gradient flag)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        margin = margin_loss(logits, y).sum()
        (grad,) = torch.autograd.grad(margin, x, retain_graph=True, allow_unused=True)
        ce = F.cross_entropy(logits, y, reduction="sum")
        (ce_grad,) = torch.autograd.grad(ce, x, allow_unused=True)
    grad = torch.zeros_like(x) if grad is None else grad
    ce_grad = torch.zeros_like(x) if ce_grad is None else ce_grad
    finite = bool(torch.isfinite(grad).all() and torch.isfinite(ce_grad).all())
    zero = grad.flatten(1).abs().sum(1) == 0
    nonzero = 1.0 - float(zero.float().mean())
    passed = finite and nonzero >= min_nonzero
    if not finite:
        detail = "the input gradient holds NaN or inf values"
    elif passed:
        detail = f"{nonzero:.1%} of examples have a non-zero, finite input gradient"
    else:
        detail = (
            f"only {nonzero:.1%} of examples have a non-zero input gradient, zero at examples "
            f"{_ids(zero)} (gradient masking: gradient attacks cannot work)"
        )
    return Check("gradients_finite", passed, nonzero, f">= {min_nonzero:g} non-zero", detail)


def model_checks(model: nn.Module, x: Tensor, y: Tensor, eot: bool = False) -> list[Check]:
    """Returns the checks of the model alone on a batch, with the model in eval mode (its
    modes restored): :func:`randomised`, :func:`softmax_output`, :func:`gradients_finite`."""
    with attack_mode(model):
        return [
            randomised(model, x, eot=eot),
            softmax_output(model, x),
            gradients_finite(model, x, y),
        ]


def _recomputed(model: nn.Module, x_adv: Tensor, y: Tensor, batch_size: int, seed: int) -> Tensor:
    """Returns which examples a fresh float64 copy of ``model`` classifies correctly, computed
    in a seeded random order with batches of ``batch_size``."""
    fresh = copy.deepcopy(model).to(torch.float64).eval()
    order = torch.randperm(len(x_adv), generator=torch.Generator().manual_seed(seed))
    order = order.to(x_adv.device)
    robust = torch.zeros(len(x_adv), dtype=torch.bool, device=x_adv.device)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            robust[index] = fresh(x_adv[index].to(torch.float64)).argmax(1) == y[index]
    return robust


def reverified(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    reported_robust: Tensor,
    distance: Callable[[Tensor, Tensor], Tensor],
    eps: float,
    batch_size: int = 256,
    tol: float = 1e-5,
    seed: int = 0,
) -> Check:
    """Recomputes every outcome independently of the evaluation that reported it.

    A fresh copy of the model (deep-copied, so nothing the evaluation holds is reused), in
    float64 and eval mode, classifies the final adversarial examples in a random order
    (``seed``) with another batch size than the evaluation's ``batch_size``. Fails when it
    disagrees about any example (named by position) with ``reported_robust``, when an example
    lies outside the ball (``distance > eps + tol``) or the [0, 1] box, or when a value is not
    finite. A model whose answer depends on the batch or on float precision fails here.
    """
    if len(x) == 0:
        return skipped("reverified", "no examples")
    other = max(1, min(batch_size, len(x)) // 2)
    fresh = _recomputed(model, x_adv, y, other if other != batch_size else other + 1, seed)
    reported = reported_robust.to(fresh.device)
    missed = reported & ~fresh  # reported robust, fooled on recomputation
    phantom = ~reported & fresh  # reported fooled, robust on recomputation
    mismatches = int(missed.sum() + phantom.sum())
    far = distance(x_adv, x) - eps
    over = float(far.max())
    outside_box = (x_adv < -tol) | (x_adv > 1 + tol)
    finite = bool(torch.isfinite(x_adv).all())
    passed = mismatches == 0 and over <= tol and not bool(outside_box.any()) and finite
    problems = []
    if missed.any():
        problems.append(
            f"examples {_ids(missed)} are reported robust but a fresh float64 copy of the model "
            "is fooled by them"
        )
    if phantom.any():
        problems.append(
            f"examples {_ids(phantom)} are reported fooled but a fresh float64 copy of the model "
            "classifies them correctly"
        )
    if over > tol:
        problems.append(f"examples {_ids(far > tol)} lie up to {over:.3g} outside the eps ball")
    if outside_box.any():
        problems.append(f"examples {_ids(outside_box.flatten(1).any(1))} leave the [0, 1] box")
    if not finite:
        problems.append("an example holds NaN or inf")
    detail = (
        f"at eps {eps:g}, a fresh float64 copy of the model, in another order and batch size, "
        f"agrees on all {len(x)} outcomes; every example lies inside the ball"
        if passed
        else f"at eps {eps:g}: " + "; ".join(problems)
    )
    return Check("reverified", passed, float(mismatches), "0 mismatches, inside the ball", detail)
