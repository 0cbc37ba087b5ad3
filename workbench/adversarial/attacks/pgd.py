"""Projected gradient descent (Madry et al. 2018), L-inf and L2."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import (
    Attack,
    BestIterate,
    register_attack,
)
from workbench.errors import WorkbenchError


@register_attack("pgd")
class PGD(Attack):
    """Projected gradient ascent on the loss, from a random start, with restarts.

    Every step costs one forward and one backward pass (gradients with respect to the input
    only), and nothing else: ``steps x restarts`` forward passes in all, plus one at the end of
    every run but the last, where a restart must know which examples are still standing. The
    forward of each step also ranks the iterate it is taken at, so an example that a ranked
    iterate fooled gets the best such one back (highest loss); an example that none fooled gets
    the last iterate of the last run, the only one never ranked. Whether an example is fooled
    is thus decided over every iterate, as when each is evaluated, with one forward pass less.
    A restart re-attacks only the examples still standing.

    Options:
        steps: gradient steps per restart (10).
        step_size: step length in the threat's norm (default ``2.5 * eps / steps``).
        restarts: number of runs (1).
        random_start: start uniformly inside the ball (True) or at the clean image.
        loss: ``ce`` (cross-entropy), ``margin`` (C&W margin) or ``dlr``.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "steps": 10,
        "step_size": None,
        "restarts": 1,
        "random_start": True,
        "loss": "ce",
    }

    step_factor: ClassVar[float] = 2.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options["restarts"] > 1 and not self.options["random_start"]:
            raise WorkbenchError(
                "restarts: more than one run needs random_start=True (each would repeat the first)"
            )

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Runs the attack ``restarts`` times, each run after the first on the examples not yet
        fooled, and returns every example's best iterate (see :meth:`run`)."""
        restarts = self.options["restarts"]
        best, last = self.run(x, y, target, evaluate_last=restarts > 1)
        index = torch.arange(len(x), device=x.device)
        for run in range(1, restarts):
            index = (~best.success).nonzero()[:, 0]
            if len(index) == 0:
                return best.x
            part = None if target is None else target[index]
            found, last = self.run(x[index], y[index], part, evaluate_last=run < restarts - 1)
            best.merge(index, found)
        missed = ~best.success[index]
        best.x[index[missed]] = last[missed]
        return best.x

    def start(self, x: Tensor) -> Tensor:
        """Returns the first iterate: a random point of the ball or ``x`` itself."""
        if self.options["random_start"]:
            return self.constrain(self.threat.random_start(x, self.generator), x)
        return x.clone()

    def run(
        self, x: Tensor, y: Tensor, target: Tensor | None, evaluate_last: bool = False
    ) -> tuple[BestIterate, Tensor]:
        """One run of the attack, one forward and one backward pass per step.

        The forward of step ``k`` evaluates iterate ``k`` (the start is iterate 0) while it
        computes the gradient, so the iterates ``0 .. steps - 1`` are ranked at no extra cost;
        the last iterate is evaluated only with ``evaluate_last`` (one more forward pass, which
        a restart needs to know which examples are still standing).

        Returns:
            every example's best ranked iterate (a misclassified one first, then the highest
            loss) and the last iterate.
        """
        steps = self.options["steps"]
        size = self.step_size(steps, self.step_factor)
        best = BestIterate(x)
        x_adv = self.start(x)
        state: dict[str, Any] = {}
        for _ in range(steps):
            loss, logits, grad = self.loss_grad(x_adv, y, target)
            best.update(x_adv, loss, self.success(logits, y, target))
            x_adv = self.constrain(x_adv + size * self.direction(grad, state), x)
        if evaluate_last:
            best.update(x_adv, *self.evaluate(x_adv, y, target))
        return best, x_adv

    def constrain(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Returns ``x_adv`` moved into the allowed set (the threat model's ball and box)."""
        return self.threat.project(x_adv, x)

    def direction(self, grad: Tensor, state: dict[str, Any]) -> Tensor:
        """Returns the update direction from the gradient (steepest ascent here)."""
        return self.steepest(grad)
