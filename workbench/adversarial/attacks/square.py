"""Square attack (Andriushchenko et al. 2020), L-inf, black-box: logits only, no gradients."""

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
    """Random search over square-shaped L-inf updates at the vertices of the eps-ball.

    Starts from vertical stripes of ``+-eps``; every query redraws a random square of each
    example still correctly classified to ``+-eps`` per channel and keeps it when the loss drops.
    The square shrinks on the paper's schedule. Queries only the logits (no gradients, so it
    also works when gradients are masked); deterministic given the seed. Untargeted it lowers
    the margin ``z_y - max_{i != y} z_i``, targeted the cross-entropy to the target.
    The queries each example used are in :attr:`last_queries`.

    Options:
        queries: the query budget per example (1000).
        p_init: the initial fraction of pixels in a square (0.8).
    """

    norms: ClassVar[tuple[str, ...]] = ("linf",)
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
        return (2 * draws - 1).float() * self.threat.eps

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        batch, channels, height, width = x.shape
        low, high = self.threat.lower, self.threat.upper
        budget = self.options["queries"]
        x_best = (x + self._signs((batch, channels, 1, width), x.device)).clamp(low, high)
        loss_best, margin_best = self._scores(x_best, y, target)
        queries = torch.ones(batch, dtype=torch.long, device=x.device)
        rows = torch.arange(height, device=x.device)
        cols = torch.arange(width, device=x.device)
        for query in range(1, budget):
            index = (margin_best > 0).nonzero()[:, 0]
            if len(index) == 0:
                break
            count = len(index)
            fraction = square_fraction(self.options["p_init"], query, budget)
            side = round(math.sqrt(fraction * height * width))
            side = min(max(side, 1), min(height, width) - 1) if min(height, width) > 1 else 1
            top = torch.randint(0, height - side + 1, (count, 1), generator=self.generator,
                                device=x.device)  # fmt: skip
            left = torch.randint(0, width - side + 1, (count, 1), generator=self.generator,
                                 device=x.device)  # fmt: skip
            inside_rows = (rows >= top) & (rows < top + side)
            inside_cols = (cols >= left) & (cols < left + side)
            square = inside_rows[:, None, :, None] & inside_cols[:, None, None, :]
            x_clean, current = x[index], x_best[index]
            deltas = torch.where(
                square, self._signs((count, channels, 1, 1), x.device), current - x_clean
            )
            candidate = (x_clean + deltas).clamp(low, high)
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
