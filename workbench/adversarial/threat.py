"""The threat model: which perturbations an attacker may make to an image in [0, 1] pixel space."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from workbench.errors import WorkbenchError

NORMS = ("linf", "l2")


@dataclass(frozen=True)
class ThreatModel:
    """A norm ball of radius ``eps`` around each clean image, intersected with the pixel box.

    Perturbations live in pixel space (images in ``[lower, upper]``, normally ``[0, 1]``); any
    input normalisation belongs to the model wrapper (:class:`~workbench.adversarial.model.
    LogitsModel`), so ``eps`` always means the same thing.

    Args:
        norm: ``"linf"`` or ``"l2"``.
        eps: radius of the ball; L-inf in ``(0, 1]``, L2 in ``(0, sqrt(numel)]`` where ``numel``
            is the number of values of one image (checked by :meth:`check_images`).
        lower, upper: the pixel box, inside ``[0, 1]``.
    """

    norm: str
    eps: float
    lower: float = 0.0
    upper: float = 1.0

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise WorkbenchError(f"norm: unknown {self.norm!r}; allowed: {', '.join(NORMS)}")
        if not 0.0 <= self.lower < self.upper <= 1.0:
            raise WorkbenchError(
                f"lower/upper: need 0 <= lower < upper <= 1, got {self.lower}, {self.upper}"
            )
        eps = float(self.eps)
        if self.norm == "linf" and not (math.isfinite(eps) and 0.0 < eps <= 1.0):
            raise WorkbenchError(f"eps: for linf must be in (0, 1], got {self.eps}")
        if self.norm == "l2" and not (math.isfinite(eps) and eps > 0.0):
            raise WorkbenchError(f"eps: for l2 must be in (0, sqrt(values per image)], got {eps}")

    def check_images(self, x: Tensor) -> None:
        """Checks ``eps`` against the size of the images ``x`` (B x ...): an L2 radius larger
        than ``sqrt(values per image)`` exceeds the whole box.

        Raises:
            WorkbenchError: naming ``eps`` and its range.
        """
        numel = x[0].numel() if len(x) else 0
        if self.norm == "l2" and numel and self.eps > math.sqrt(numel):
            raise WorkbenchError(
                f"eps: for l2 on images of {numel} values must be in (0, {math.sqrt(numel):.4g}], "
                f"got {self.eps}"
            )

    def clip_delta(self, delta: Tensor) -> Tensor:
        """Returns the perturbations ``delta`` (B x ...) projected onto the eps-ball (no box)."""
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        factor = (self.eps / norms).clamp(max=1.0)
        return delta * factor.view(-1, *([1] * (delta.dim() - 1)))

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Returns ``x_adv`` moved into the eps-ball around ``x`` and the pixel box.

        The L2 projection scales the perturbation down; clipping to the box afterwards moves
        every value towards ``x`` and so cannot leave the ball again.
        """
        return (x + self.clip_delta(x_adv - x)).clamp(self.lower, self.upper)

    def distance(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Returns the per-example distance (B) between ``x_adv`` and ``x`` in this norm."""
        delta = (x_adv - x).flatten(1)
        if self.norm == "linf":
            return delta.abs().amax(dim=1)
        return delta.norm(dim=1)

    def assert_within(self, x_adv: Tensor, x: Tensor, tol: float = 1e-5) -> None:
        """Checks that every example of ``x_adv`` is inside the ball and the box.

        Raises:
            WorkbenchError: naming how many examples are outside and by how much.
        """
        dist = self.distance(x_adv, x)
        outside = dist > self.eps + tol
        if outside.any():
            raise WorkbenchError(
                f"eps: {int(outside.sum())} of {len(x)} examples are outside the {self.norm} ball "
                f"of radius {self.eps} (largest distance {dist.max().item():.6g})"
            )
        low, high = x_adv.min().item(), x_adv.max().item()
        if low < self.lower - tol or high > self.upper + tol:
            raise WorkbenchError(
                f"lower/upper: adversarial values span [{low:.6g}, {high:.6g}], outside "
                f"[{self.lower}, {self.upper}]"
            )

    def random_start(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Returns a uniformly random point of the ball around ``x`` (clipped to the box)."""
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return self.project(x + (2 * noise - 1) * self.eps, x)
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(
            -1, *([1] * (x.dim() - 1))
        )
        dims = x[0].numel()
        radius = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype)
        radius = radius ** (1.0 / dims) * self.eps
        return self.project(x + direction * radius.view(-1, *([1] * (x.dim() - 1))), x)
