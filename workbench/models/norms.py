"""Normalization layers by name, including batch renormalization (Ioffe 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.errors import WorkbenchError

NORMS = ("batch", "group", "batch_renorm", "none")
DEFAULT_GROUPS = 8


class BatchRenorm2d(nn.Module):
    """Batch renormalization over ``[B, C, H, W]`` inputs (Ioffe 2017, arXiv:1702.03275).

    In training the batch-normalized activations are corrected towards the running statistics,
    ``x_hat = (x - mu_B) / sigma_B * r + d`` with ``r = sigma_B / sigma`` clipped to
    ``[1 / r_max, r_max]`` and ``d = (mu_B - mu) / sigma`` clipped to ``[-d_max, d_max]``; ``r`` and
    ``d`` are constants for backpropagation. The running statistics are updated like
    :class:`torch.nn.BatchNorm2d` (``momentum``, unbiased running variance), and at eval the layer
    is exactly a batch norm that uses them. With running statistics equal to the batch statistics
    it is plain batch norm.

    Args:
        num_features: channels ``C``.
        eps: added to the variances.
        momentum: weight of the new batch statistics in the running averages.
        r_max: bound of the scale correction ``r`` (>= 1).
        d_max: bound of the shift correction ``d`` (>= 0).
        affine: learn a per-channel scale and shift.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        r_max: float = 3.0,
        d_max: float = 5.0,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if r_max < 1 or d_max < 0:
            raise WorkbenchError(
                f"BatchRenorm2d: need r_max >= 1 and d_max >= 0, got {r_max}, {d_max}"
            )
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.r_max = r_max
        self.d_max = d_max
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """Renormalizes ``x`` in training and batch-normalizes with running statistics at eval."""
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        dims = (0, 2, 3)
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        std = (var + self.eps).sqrt()
        with torch.no_grad():
            running_std = (self.running_var + self.eps).sqrt()
            r = (std / running_std).clamp(1 / self.r_max, self.r_max)
            d = ((mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max)
            count = x.numel() // x.shape[1]
            unbiased = var * count / max(count - 1, 1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked += 1
        scale = r / std
        shift = d - mean * scale
        if self.weight is not None:
            scale = scale * self.weight
            shift = shift * self.weight + self.bias
        return x * scale[:, None, None] + shift[:, None, None]

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"r_max={self.r_max}, d_max={self.d_max}, affine={self.weight is not None}"
        )


def check_norm(kind: str) -> None:
    """Raises :class:`WorkbenchError` unless ``kind`` is one of :data:`NORMS`."""
    if kind not in NORMS:
        raise WorkbenchError(f"norm must be one of {', '.join(NORMS)}; got {kind!r}")


def make_norm(kind: str, channels: int, groups: int | None = None) -> nn.Module:
    """Builds a normalization layer for ``channels``-channel feature maps.

    Args:
        kind: one of :data:`NORMS`; ``"none"`` gives :class:`torch.nn.Identity`.
        channels: feature channels.
        groups: GroupNorm groups; must divide ``channels``. By default the largest divisor of
            ``channels`` up to 8 (``min(8, channels)`` for widths that are multiples of 8).

    Returns:
        The layer.

    Raises:
        WorkbenchError: unknown ``kind`` or ``groups`` that does not divide ``channels``.
    """
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "batch_renorm":
        return BatchRenorm2d(channels)
    if kind == "none":
        return nn.Identity()
    if groups is None:
        groups = next(g for g in range(min(DEFAULT_GROUPS, channels), 0, -1) if channels % g == 0)
    elif groups < 1 or channels % groups:
        raise WorkbenchError(f"groups={groups} must divide every stage's channels; got {channels}")
    return nn.GroupNorm(groups, channels)
