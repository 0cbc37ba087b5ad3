"""Perceptual measures of a perturbation: SSIM (kornia) and the L0 / L2 / L-inf norms."""

from __future__ import annotations

import kornia
import torch
from torch import Tensor

from workbench.errors import WorkbenchError

CHANGED = 1e-6
"""A value counts as changed for L0 when it moved by more than this."""


def ssim_window(x: Tensor) -> int:
    """Returns the SSIM window for images ``x``: 11 (the usual Gaussian window) or the largest
    odd size that fits smaller images."""
    size = min(11, *x.shape[-2:])
    return size if size % 2 else size - 1


def ssim(x: Tensor, x_adv: Tensor, window: int | None = None) -> Tensor:
    """Returns the mean structural similarity of every pair of images (B), 1 = identical.

    Args:
        x: clean images, B x C x H x W in [0, 1].
        x_adv: perturbed images, the same shape as ``x``.
        window: odd Gaussian window size (default :func:`ssim_window`).
    """
    window = window or ssim_window(x)
    if window < 1 or window % 2 == 0:
        raise WorkbenchError(f"window: the SSIM window must be a positive odd size, got {window}")
    return kornia.metrics.ssim(x, x_adv, window, max_val=1.0).flatten(1).mean(dim=1)


def perturbation_stats(x: Tensor, x_adv: Tensor, window: int | None = None) -> dict[str, Tensor]:
    """Returns per-example measures of the perturbation ``x_adv - x`` (each a float B tensor).

    Returns:
        ``ssim`` (1 = identical), ``l0`` (pixels where any channel changed by more than
        :data:`CHANGED`), ``l2`` and ``linf`` (norms of the perturbation in [0, 1] pixel units).
    """
    if x.shape != x_adv.shape:
        raise WorkbenchError(
            f"x_adv: shape {tuple(x_adv.shape)} differs from the clean images' {tuple(x.shape)}"
        )
    with torch.no_grad():
        delta = (x_adv - x).float()
        return {
            "ssim": ssim(x.float(), x_adv.float(), window),
            "l0": (delta.abs() > CHANGED).any(dim=1).flatten(1).sum(dim=1).float(),
            "l2": delta.flatten(1).norm(dim=1),
            "linf": delta.flatten(1).abs().amax(dim=1),
        }
