"""Auto-PGD (Croce & Hein 2020) with the cross-entropy or the (targeted) DLR loss."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import (
    Attack,
    BestIterate,
    register_attack,
    restarted,
)
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


def period_lengths(steps: int) -> list[int]:
    """Returns the lengths of the periods between step-size checkpoints for ``steps``
    iterations: ``0.22 * steps`` first, then shrinking by ``0.03 * steps`` per period down to
    ``0.06 * steps`` (the checkpoints ``w_j`` of the paper)."""
    length = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    lengths, total = [], 0
    while total + length <= steps:
        lengths.append(length)
        total += length
        length = max(length - shrink, shortest)
    return lengths


def dlr_classes(targeted: bool) -> int:
    """Returns how many classes the DLR loss needs: 4 targeted (``z_pi3`` and ``z_pi4``), 3
    untargeted (``z_pi3``)."""
    return 4 if targeted else 3


def _expand(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


class _APGD(Attack):
    """Auto-PGD: a budget-aware step size instead of a tuned one.

    The step starts at ``2 * eps`` and an example's step is halved at a checkpoint when its
    loss rose in fewer than ``rho`` of the steps since the last checkpoint, or when its best loss
    did not improve and the step was not halved last time; the iterate then restarts from the
    example's highest-loss point. Steps use momentum 0.75 (none after such a restart). Each
    example keeps its best iterate (misclassified first, then highest loss); restarts re-attack
    only examples not fooled yet. One forward and backward pass per step (``eot_iter`` with EOT).

    Options:
        steps: iterations (100).
        restarts: runs, each from a new random start (1).
        random_start: start uniformly inside the ball (True).
        rho: the checkpoint's fraction of loss increases (0.75).
        eot_iter: forward and backward passes per step whose gradients are averaged, for
            randomised models (1; AutoAttack's rand version uses 20); the loss and logits are
            the last pass's, as in AutoAttack.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "steps": 100,
        "restarts": 1,
        "random_start": True,
        "rho": 0.75,
        "eot_iter": 1,
    }
    loss_name: ClassVar[str] = "ce"
    momentum: ClassVar[float] = 0.75

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options["loss"] = self.loss_name
        if not 0 < self.options["rho"] <= 1:
            raise WorkbenchError(f"rho: must be in (0, 1], got {self.options['rho']}")
        draws = self.options["eot_iter"]
        if not (isinstance(draws, int) and draws >= 1):
            raise WorkbenchError(f"eot_iter: must be a positive integer, got {draws!r}")

    def loss_grad(
        self, x_adv: Tensor, y: Tensor, target: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        loss, logits, grad = super().loss_grad(x_adv, y, target)
        draws = self.options["eot_iter"]
        for _ in range(1, draws):
            loss, logits, more = super().loss_grad(x_adv, y, target)
            grad = grad + more
        return loss, logits, grad / draws

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        return restarted(self.run, x, y, target, self.options["restarts"]).x

    def run(self, x: Tensor, y: Tensor, target: Tensor | None) -> BestIterate:
        """One run from a (random) start; returns every example's best iterate."""
        steps = self.options["steps"]
        checkpoints = iter(period_lengths(steps))
        period, since = next(checkpoints, steps + 1), 0
        eta = torch.full((len(x),), 2.0 * self.threat.eps, device=x.device)
        if self.options["random_start"]:
            x_adv = self.threat.random_start(x, self.generator)
        else:
            x_adv = x.clone()
        loss, logits, grad = self.loss_grad(x_adv, y, target)
        best = BestIterate(x)
        best.update(x_adv, loss, self.success(logits, y, target))
        x_max, f_max, grad_max = x_adv, loss, grad
        f_max_checked = f_max.clone()
        reduced = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        increases = torch.zeros(len(x), device=x.device)
        x_prev, loss_prev = x_adv, loss
        for step in range(steps):
            z = self.threat.project(x_adv + _expand(eta, x) * self.steepest(grad), x)
            a = self.momentum if step > 0 else 1.0
            x_new = self.threat.project(x_adv + a * (z - x_adv) + (1 - a) * (x_adv - x_prev), x)
            x_prev, x_adv = x_adv, x_new
            if step == steps - 1:
                best.update(x_adv, *self.evaluate(x_adv, y, target))
                break
            loss, logits, grad = self.loss_grad(x_adv, y, target)
            best.update(x_adv, loss, self.success(logits, y, target))
            increases += loss > loss_prev
            loss_prev = loss
            improved = loss > f_max
            x_max = torch.where(_expand(improved, x), x_adv, x_max)
            grad_max = torch.where(_expand(improved, x), grad, grad_max)
            f_max = torch.where(improved, loss, f_max)
            since += 1
            if since == period:
                oscillating = increases < self.options["rho"] * period
                stalled = ~reduced & (f_max_checked >= f_max)
                reduced = oscillating | stalled
                f_max_checked = f_max.clone()
                eta = torch.where(reduced, eta / 2, eta)
                back = _expand(reduced, x)
                x_adv = torch.where(back, x_max, x_adv)
                x_prev = torch.where(back, x_max, x_prev)
                grad = torch.where(back, grad_max, grad)
                increases.zero_()
                period, since = next(checkpoints, steps + 1), 0
        return best


@register_attack("apgd-ce")
class APGDCE(_APGD):
    """APGD on the cross-entropy loss (see :class:`_APGD` for the step-size rule and options)."""


@register_attack("apgd-dlr")
class APGDDLR(_APGD):
    """APGD on the difference-of-logits-ratio loss, shift- and scale-invariant in the logits.

    Untargeted it ascends the DLR loss; targeted, the targeted DLR loss (APGD-T). A model with
    fewer classes than the loss needs (:func:`dlr_classes`: 4 targeted, 3 untargeted) is
    attacked with the (targeted) cross-entropy instead, so any model with 2 classes or more can
    be evaluated. With ``targeted=True`` and no ``target``, it tries the ``target_classes``
    most likely wrong classes (ranked on the clean image; at most classes - 1) one after
    another on the examples not misclassified yet, as AutoAttack does, and success then means
    any misclassification.

    Options:
        target_classes: how many target classes to try without given targets (9).
        steps, restarts, random_start, rho, eot_iter: as for :class:`_APGD`.
    """

    defaults: ClassVar[dict[str, Any]] = {**_APGD.defaults, "target_classes": 9}
    loss_name: ClassVar[str] = "dlr"
    target_optional: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not (
            isinstance(self.options["target_classes"], int) and self.options["target_classes"] >= 1
        ):
            raise WorkbenchError(
                "target_classes: must be a positive integer, "
                f"got {self.options['target_classes']!r}"
            )

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        clean = self.logits(x, y, target)
        needed = dlr_classes(self.targeted)
        self.options["loss"] = self.loss_name if clean.shape[1] >= needed else "ce"
        if clean.shape[1] < needed:
            log.info(
                "apgd-dlr: the model has %d classes, the DLR loss needs %d: using the %s",
                clean.shape[1],
                needed,
                "targeted cross-entropy" if self.targeted else "cross-entropy",
            )
        self.auto_targets = self.targeted and target is None
        if not self.auto_targets:
            return super().perturb(x, y, target)
        try:
            ranked = clean.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
            best = BestIterate(x)
            for rank in range(min(self.options["target_classes"], clean.shape[1] - 1)):
                index = (~best.success).nonzero()[:, 0]
                if len(index) == 0:
                    break
                found = restarted(
                    self.run, x[index], y[index], ranked[index, rank], self.options["restarts"]
                )
                best.merge(index, found)
            return best.x
        finally:
            self.auto_targets = False
