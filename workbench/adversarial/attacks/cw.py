"""Carlini & Wagner (2017) L2 attack."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import Attack, margin_loss, register_attack
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


@register_attack("cw")
class CarliniWagnerL2(Attack):
    """C&W L2: minimise ``||delta||_2^2 + c * f(x + delta)`` in tanh space with Adam, with a
    binary search over ``c`` per example, keeping the smallest successful perturbation.

    ``f`` is the margin ``max(z_y - max_{i != y} z_i, -confidence)`` (targeted:
    ``max(max_{i != t} z_i - z_t, -confidence)``). C&W looks for the *smallest* perturbation, not
    one inside a given ball: its L2 norm may exceed the threat model's ``eps``. The attack
    reports the unbounded norms in :attr:`last_l2` (``inf`` where it failed) and, like every
    attack, returns examples projected onto the eps-ball, so an example that needed more than
    ``eps`` comes back scaled down to ``eps`` and may no longer fool the model. Pass a large
    ``eps`` to get the unbounded examples. Where no ``c`` succeeded, the iterate with the
    lowest margin is returned.

    Options:
        steps: Adam steps per value of ``c`` (100).
        binary_steps: values of ``c`` tried (5).
        initial_const: the first ``c`` (1.0).
        lr: Adam's learning rate in tanh space (0.1). Pixels at the box edges (the black
            background of digits) sit deep in tanh's flat tails, where Carlini and Wagner's 0.01
            needs thousands of steps to move them: on a small digits CNN at eps=1, 100 steps
            at 0.1 left 4% accuracy, 50 steps at 0.01 left 50%.
        confidence: the margin kappa by which an example must be misclassified (0).
    """

    norms: ClassVar[tuple[str, ...]] = ("l2",)
    defaults: ClassVar[dict[str, Any]] = {
        "steps": 100,
        "binary_steps": 5,
        "initial_const": 1.0,
        "lr": 0.1,
        "confidence": 0.0,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        opts = self.options
        if not (isinstance(opts["binary_steps"], int) and opts["binary_steps"] >= 1):
            raise WorkbenchError(
                f"binary_steps: must be a positive integer, got {opts['binary_steps']!r}"
            )
        for key in ("initial_const", "lr"):
            if not opts[key] > 0:
                raise WorkbenchError(f"{key}: must be positive, got {opts[key]}")
        if not opts["confidence"] >= 0:
            raise WorkbenchError(f"confidence: must be >= 0, got {opts['confidence']}")
        self.last_l2: Tensor | None = None

    def _to_image(self, w: Tensor) -> Tensor:
        low, high = self.threat.lower, self.threat.upper
        return low + (high - low) * (torch.tanh(w) + 1) / 2

    def _margin(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Returns how far each example is from being fooled (<= -confidence: fooled)."""
        return margin_loss(logits, target) if target is not None else -margin_loss(logits, y)

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        opts = self.options
        low, high = self.threat.lower, self.threat.upper
        unit = ((x - low) / (high - low) * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6)
        w_start = torch.atanh(unit)
        batch = len(x)
        const = torch.full((batch,), float(opts["initial_const"]), device=x.device)
        const_low = torch.zeros_like(const)
        const_high = torch.full_like(const, float("inf"))
        best_l2 = torch.full_like(const, float("inf"))
        best_x = x.clone()
        fallback_margin = torch.full_like(const, float("inf"))
        fallback_x = x.clone()
        view = (-1, *([1] * (x.dim() - 1)))
        for _ in range(opts["binary_steps"]):
            w = w_start.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=opts["lr"])
            fooled = torch.zeros(batch, dtype=torch.bool, device=x.device)
            for _ in range(opts["steps"]):
                with torch.enable_grad():
                    x_adv = self._to_image(w)
                    logits = self.logits(x_adv, y, target)
                    l2 = (x_adv - x).flatten(1).pow(2).sum(dim=1)
                    margin = self._margin(logits, y, target)
                    loss = l2 + const * margin.clamp(min=-opts["confidence"])
                    (w.grad,) = torch.autograd.grad(loss.sum(), w)
                x_adv, l2, margin = x_adv.detach(), l2.detach(), margin.detach()
                success = self.success(logits.detach(), y, target) & (margin <= -opts["confidence"])
                smaller = success & (l2 < best_l2)
                best_x = torch.where(smaller.view(view), x_adv, best_x)
                best_l2 = torch.where(smaller, l2, best_l2)
                closer = margin < fallback_margin
                fallback_x = torch.where(closer.view(view), x_adv, fallback_x)
                fallback_margin = torch.where(closer, margin, fallback_margin)
                fooled |= success
                optimizer.step()
            const_high = torch.where(fooled, torch.minimum(const_high, const), const_high)
            const_low = torch.where(fooled, const_low, torch.maximum(const_low, const))
            const = torch.where(const_high < float("inf"), (const_low + const_high) / 2, const * 10)
        found = best_l2 < float("inf")
        self.last_l2 = best_l2.sqrt()
        beyond = int((self.last_l2[found] > self.threat.eps).sum())
        log.info(
            "cw: %d of %d examples fooled; %d needed an L2 norm above eps=%g (projected to eps)",
            int(found.sum()),
            batch,
            beyond,
            self.threat.eps,
        )
        return torch.where(found.view(view), best_x, fallback_x)
