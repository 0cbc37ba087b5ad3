"""Square attack (Andriushchenko et al. 2020), L-inf and L2, black-box: logits only."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.adversarial.attacks.base import Attack, margin_loss, register_attack
from workbench.errors import WorkbenchError

# (fraction of the budget, divisor of p_init): the paper's schedule for 10,000 queries
_SCHEDULE = ((0.001, 1), (0.005, 2), (0.02, 4), (0.05, 8), (0.1, 16), (0.2, 32), (0.4, 64),
             (0.6, 128), (0.8, 256), (1.0, 512))  # fmt: skip


def square_fraction(p_init: float, query: int, budget: int) -> float:
    """Returns the fraction of pixels a square covers at ``query`` of ``budget`` queries."""
    progress = query / budget
    for end, divisor in _SCHEDULE:
        if progress <= end:
            return p_init / divisor
    return p_init / 512


@register_attack("square")
class Square(Attack):
    """Random search over square-shaped updates, kept when the loss drops.

    L-inf: starts from vertical stripes of ``+-eps``; every query redraws a random square of
    each example still correctly classified to ``+-eps`` per channel. L2: starts from a grid of
    random-signed pseudo-Gaussian bumps at norm ``eps``; every query moves the perturbation's
    mass from one random square into a new bump on another, keeping the norm at ``eps``. The
    squares shrink on the paper's schedule. Queries only the logits (no gradients, so it
    also works when gradients are masked); deterministic given the seed. Untargeted it lowers
    the margin ``z_y - max_{i != y} z_i``, targeted the cross-entropy to the target.
    The queries each example used are in :attr:`last_queries`.

    Options:
        queries: the query budget per example (1000).
        p_init: the initial fraction of pixels in a square (0.8).
    """

    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    black_box: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {"queries": 1000, "p_init": 0.8}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not (isinstance(self.options["queries"], int) and self.options["queries"] >= 1):
            raise WorkbenchError(
                f"queries: must be a positive integer, got {self.options['queries']!r}"
            )
        if not 0 < self.options["p_init"] <= 1:
            raise WorkbenchError(f"p_init: must be in (0, 1], got {self.options['p_init']}")
        self.last_queries: Tensor | None = None

    def _scores(self, x: Tensor, y: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
        """Returns the loss to lower and the margin (<= 0: fooled) of one query."""
        logits = self.logits(x, y, target)
        if target is None:
            margin = -margin_loss(logits, y)
            return margin, margin
        return F.cross_entropy(logits, target, reduction="none"), margin_loss(logits, target)

    def _signs(self, shape: tuple[int, ...], device: torch.device) -> Tensor:
        draws = torch.randint(0, 2, shape, generator=self.generator, device=device)
        return (2 * draws - 1).float()

    def _draw(self, high: int) -> int:
        return int(torch.randint(0, max(high, 1), (1,), generator=self.generator))

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        budget = self.options["queries"]
        linf = self.threat.norm == "linf"
        x_best = self._start_linf(x) if linf else self._start_l2(x)
        loss_best, margin_best = self._scores(x_best, y, target)
        queries = torch.ones(len(x), dtype=torch.long, device=x.device)
        for query in range(1, budget):
            index = (margin_best > 0).nonzero()[:, 0]
            if len(index) == 0:
                break
            fraction = square_fraction(self.options["p_init"], query, budget)
            x_clean, current = x[index], x_best[index]
            if linf:
                candidate = self._propose_linf(x_clean, current, fraction)
            else:
                candidate = self._propose_l2(x_clean, current, fraction)
            loss, margin = self._scores(
                candidate, y[index], None if target is None else target[index]
            )
            better = loss < loss_best[index]
            loss_best[index] = torch.where(better, loss, loss_best[index])
            margin_best[index] = torch.where(better, margin, margin_best[index])
            x_best[index] = torch.where(better[:, None, None, None], candidate, current)
            queries[index] += 1
        self.last_queries = queries
        return x_best

    def _start_linf(self, x: Tensor) -> Tensor:
        """Vertical stripes of +-eps."""
        batch, channels, _, width = x.shape
        stripes = self._signs((batch, channels, 1, width), x.device) * self.threat.eps
        return (x + stripes).clamp(self.threat.lower, self.threat.upper)

    def _propose_linf(self, x: Tensor, current: Tensor, fraction: float) -> Tensor:
        """Redraws one random square per example to +-eps per channel."""
        count, channels, height, width = x.shape
        side = round(math.sqrt(fraction * height * width))
        side = min(max(side, 1), min(height, width) - 1) if min(height, width) > 1 else 1
        top = torch.randint(0, height - side + 1, (count, 1), generator=self.generator,
                            device=x.device)  # fmt: skip
        left = torch.randint(0, width - side + 1, (count, 1), generator=self.generator,
                             device=x.device)  # fmt: skip
        rows = torch.arange(height, device=x.device)
        cols = torch.arange(width, device=x.device)
        inside_rows = (rows >= top) & (rows < top + side)
        inside_cols = (cols >= left) & (cols < left + side)
        square = inside_rows[:, None, :, None] & inside_cols[:, None, None, :]
        signs = self._signs((count, channels, 1, 1), x.device) * self.threat.eps
        deltas = torch.where(square, signs, current - x)
        return (x + deltas).clamp(self.threat.lower, self.threat.upper)

    def _bump(self, side: int, device: torch.device) -> Tensor:
        """The paper's L2 update shape: two opposite-signed pseudo-Gaussian halves of a
        ``side`` x ``side`` square (unit norm)."""
        bump = torch.zeros(side, side, device=device)
        half = side // 2
        if half:
            bump[:half] = _pseudo_gaussian(half, side, device)
        bump[half:] = -_pseudo_gaussian(side - half, side, device)
        return bump / bump.norm()

    def _start_l2(self, x: Tensor) -> Tensor:
        """A grid of random-signed bumps, scaled to L2 norm eps."""
        batch, channels, height, width = x.shape
        side = max(min(height, width) // 5, 1)
        offset = max((height - side * 5) // 2, 0)
        delta = torch.zeros_like(x)
        for top in range(offset, height - side + 1, side):
            for left in range(offset, width - side + 1, side):
                signs = self._signs((batch, channels, 1, 1), x.device)
                bump = self._bump(side, x.device)
                bump = bump.T if self._draw(2) else bump
                delta[..., top : top + side, left : left + side] += bump * signs
        return self._rescale(x, delta)

    def _rescale(self, x: Tensor, delta: Tensor) -> Tensor:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return (x + delta / norms * self.threat.eps).clamp(self.threat.lower, self.threat.upper)

    def _window(self, count: int, side: int, height: int, width: int, device) -> Tensor:
        """Returns ``count`` random square windows as (count, side^2) flat pixel indices."""
        top = torch.randint(0, max(height - side, 1), (count, 1, 1), generator=self.generator,
                            device=device)  # fmt: skip
        left = torch.randint(0, max(width - side, 1), (count, 1, 1), generator=self.generator,
                             device=device)  # fmt: skip
        offsets = torch.arange(side, device=device)
        rows = top + offsets[None, :, None]
        cols = left + offsets[None, None, :]
        return (rows * width + cols).flatten(1)

    def _propose_l2(self, x: Tensor, current: Tensor, fraction: float) -> Tensor:
        """Moves the perturbation's mass from a second random square into a new bump on a
        first one (a random pair of squares per example), keeping the L2 norm at eps."""
        count, channels, height, width = x.shape
        side = max(round(math.sqrt(fraction * height * width)), 3)
        side += 1 - side % 2  # odd
        side = max(min(side, min(height, width) - 1), 1)
        first = self._window(count, side, height, width, x.device)[:, None].expand(-1, channels, -1)
        second = self._window(count, side, height, width, x.device)[:, None].expand(
            -1, channels, -1
        )
        delta = (current - x).flatten(2)  # count x C x HW
        in_first = delta.gather(2, first)
        window_norm = in_first.pow(2).sum(dim=2, keepdim=True).sqrt()
        image_norm = delta.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()
        both = torch.zeros_like(delta, dtype=torch.bool)
        both.scatter_(2, first, True)
        both.scatter_(2, second, True)
        both_norm = (delta * both).pow(2).sum(dim=2, keepdim=True).sqrt()
        bump = self._bump(side, x.device)
        flip = torch.randint(0, 2, (count, 1, 1), generator=self.generator, device=x.device)
        shapes = torch.where(flip.bool(), bump.T.flatten()[None, None], bump.flatten()[None, None])
        signs = self._signs((count, channels, 1), x.device)
        update = shapes * signs + in_first / (window_norm + 1e-10)
        room = (self.threat.eps**2 - image_norm**2).clamp_min(0) / channels + both_norm**2
        update = update / update.pow(2).sum(dim=2, keepdim=True).sqrt().clamp_min(1e-12)
        delta = delta.scatter(2, second, 0.0).scatter(2, first, update * room.sqrt())
        return self._rescale(x, delta.view_as(x))


def _pseudo_gaussian(rows: int, cols: int, device: torch.device) -> Tensor:
    """Nested rectangles weighted ``1 / (k + 1)^2`` around the centre, unit L2 norm."""
    bump = torch.zeros(rows, cols, device=device)
    top, left = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        bump[
            max(top, 0) : min(top + 2 * k + 1, rows), max(left, 0) : min(left + 2 * k + 1, cols)
        ] += 1.0 / (k + 1) ** 2
        top, left = top - 1, left - 1
    return bump / bump.norm()
