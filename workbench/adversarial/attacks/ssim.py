"""A perceptually bounded PGD: the perturbation is also limited by SSIM to the clean image."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import register_attack
from workbench.adversarial.attacks.pgd import PGD
from workbench.adversarial.perceptual import perturbation_stats, ssim
from workbench.errors import WorkbenchError


@register_attack("ssim-pgd")
class SSIMPGD(PGD):
    """PGD whose every iterate also keeps ``SSIM(x, x_adv) >= min_ssim``.

    SSIM (structural similarity) tracks how visible a change is to a person better than a norm:
    the same L-inf budget is hardly seen in busy texture and plainly seen on a flat background.
    After each projection onto the threat model, an example below ``min_ssim`` has its
    perturbation scaled by the largest factor in ``[0, 1]`` that meets the bound, found by
    bisection per example (scaling keeps it inside the ball and the box). After each call,
    :attr:`last_stats` holds SSIM and L0 / L2 / L-inf of every returned example
    (:func:`~workbench.adversarial.perceptual.perturbation_stats`).

    Options:
        min_ssim: the least SSIM to the clean image (0.95).
        window: SSIM window (odd; default 11 or the largest that fits).
        bisection: bisection steps on the scale (12).
        steps, step_size, restarts, random_start, loss: as for :class:`PGD`.
    """

    defaults: ClassVar[dict[str, Any]] = {
        **PGD.defaults,
        "min_ssim": 0.95,
        "window": None,
        "bisection": 12,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < self.options["min_ssim"] < 1:
            raise WorkbenchError(f"min_ssim: must be in (0, 1), got {self.options['min_ssim']}")
        if not (isinstance(self.options["bisection"], int) and self.options["bisection"] >= 1):
            raise WorkbenchError(
                f"bisection: must be a positive integer, got {self.options['bisection']!r}"
            )
        self.last_stats: dict[str, Tensor] = {}

    def _ssim(self, x: Tensor, x_adv: Tensor) -> Tensor:
        return ssim(x, x_adv, self.options["window"])

    def constrain(self, x_adv: Tensor, x: Tensor) -> Tensor:
        x_adv = self.threat.project(x_adv, x)
        bound = self.options["min_ssim"]
        delta = x_adv - x
        view = (-1, *([1] * (x.dim() - 1)))
        index = (self._ssim(x, x_adv) < bound).nonzero()[:, 0]
        if len(index) == 0:
            return x_adv
        clean, delta = x[index], delta[index]
        low = torch.zeros(len(index), device=x.device)
        high = torch.ones(len(index), device=x.device)
        for _ in range(self.options["bisection"]):
            mid = (low + high) / 2
            ok = self._ssim(clean, clean + mid.view(view) * delta) >= bound
            low = torch.where(ok, mid, low)
            high = torch.where(ok, high, mid)
        x_adv = x_adv.clone()
        x_adv[index] = clean + low.view(view) * delta
        return x_adv

    def verify(self, x_adv: Tensor, x: Tensor) -> None:
        super().verify(x_adv, x)
        self.last_stats = perturbation_stats(x, x_adv, self.options["window"])
        similarity = self.last_stats["ssim"]
        below = similarity < self.options["min_ssim"] - 1e-4
        if below.any():
            raise WorkbenchError(
                f"min_ssim: {int(below.sum())} examples have SSIM below {self.options['min_ssim']} "
                f"(lowest {similarity.min().item():.4f})"
            )
