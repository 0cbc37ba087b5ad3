"""Projected gradient descent (Madry et al. 2018), L-inf and L2."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from workbench.adversarial.attacks.base import (
    Attack,
    BestIterate,
    register_attack,
    restarted,
)
from workbench.errors import WorkbenchError


@register_attack("pgd")
class PGD(Attack):
    """Projected gradient ascent on the loss, from a random start, with restarts.

    Every step costs one forward and one backward pass (gradients with respect to the input
    only). Each example keeps its best iterate: a misclassified one first, then the highest
    loss. A restart re-attacks only the examples that are still correctly classified.

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
        return restarted(self.run, x, y, target, self.options["restarts"]).x

    def start(self, x: Tensor) -> Tensor:
        """Returns the first iterate: a random point of the ball or ``x`` itself."""
        if self.options["random_start"]:
            return self.constrain(self.threat.random_start(x, self.generator), x)
        return x.clone()

    def run(self, x: Tensor, y: Tensor, target: Tensor | None) -> BestIterate:
        """One run of the attack; returns every example's best iterate."""
        steps = self.options["steps"]
        size = self.step_size(steps, self.step_factor)
        best = BestIterate(x)
        x_adv = self.start(x)
        state: dict[str, Any] = {}
        for _ in range(steps):
            loss, logits, grad = self.loss_grad(x_adv, y, target)
            best.update(x_adv, loss, self.success(logits, y, target))
            x_adv = self.constrain(x_adv + size * self.direction(grad, state), x)
        best.update(x_adv, *self.evaluate(x_adv, y, target))
        return best

    def constrain(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Returns ``x_adv`` moved into the allowed set (the threat model's ball and box)."""
        return self.threat.project(x_adv, x)

    def direction(self, grad: Tensor, state: dict[str, Any]) -> Tensor:
        """Returns the update direction from the gradient (steepest ascent here)."""
        return self.steepest(grad)
