"""Fast gradient sign method (Goodfellow et al. 2015) and its L2 form (fast gradient method)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from workbench.adversarial.attacks.base import Attack, register_attack


@register_attack("fgsm")
class FGSM(Attack):
    """One step of length ``eps`` along the steepest-ascent direction of the loss.

    Options:
        loss: ``ce`` (cross-entropy), ``margin`` or ``dlr``.
    """

    defaults: ClassVar[dict[str, Any]] = {"loss": "ce"}

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        _, _, grad = self.loss_grad(x, y, target)
        return self.threat.project(x + self.threat.eps * self.steepest(grad), x)
