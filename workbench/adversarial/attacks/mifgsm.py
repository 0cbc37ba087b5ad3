"""Momentum iterative FGSM (Dong et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from workbench.adversarial.attacks.base import register_attack
from workbench.adversarial.attacks.pgd import PGD


@register_attack("mifgsm")
class MIFGSM(PGD):
    """Iterative FGSM whose step follows an accumulated, L1-normalised gradient.

    ``g <- decay * g + grad / mean|grad|``; the step is the steepest-ascent direction of ``g``
    (its sign for L-inf). Keeps each example's best iterate like :class:`PGD`.

    Options:
        steps: iterations (10).
        step_size: step length (default ``eps / steps``).
        decay: momentum factor mu (1.0).
        restarts, random_start, loss: as for :class:`PGD` (1, False, ``ce``).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "steps": 10,
        "step_size": None,
        "decay": 1.0,
        "restarts": 1,
        "random_start": False,
        "loss": "ce",
    }
    step_factor: ClassVar[float] = 1.0

    def direction(self, grad: Tensor, state: dict[str, Any]) -> Tensor:
        scale = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12)
        grad = grad / scale.view(-1, *([1] * (grad.dim() - 1)))
        momentum = state.get("momentum")
        state["momentum"] = grad if momentum is None else self.options["decay"] * momentum + grad
        return self.steepest(state["momentum"])
