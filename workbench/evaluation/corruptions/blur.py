"""Blur corruptions: defocus, glass, motion, zoom and Gaussian blur."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from workbench.evaluation.corruptions import ops
from workbench.evaluation.corruptions.base import register


@register(
    "gaussian_blur",
    cifar10c=(0.4, 0.6, 0.7, 0.8, 1.0),
    imagenet_c=(1.0, 2.0, 3.0, 4.0, 6.0),
)
def gaussian_blur(x: Tensor, sigma: float, generator: torch.Generator, table: str) -> Tensor:
    """Gaussian blur of ``sigma`` pixels (scikit-image's: 4 sigma, edge repeated)."""
    return ops.gaussian_filter(x, sigma)


def _disk(radius: float, alias_sigma: float, dtype: torch.dtype) -> Tensor:
    """The reference's defocus kernel: a disk of ``radius``, normalised, then a 3 x 3 (5 x 5
    above radius 8) Gaussian of ``alias_sigma`` with mirrored borders. The reference draws it
    on a 17 x 17 grid at least; this grid ends two pixels past the disk, where the reference's
    values are zero too, so the kernels agree."""
    half = min(8, math.ceil(radius) + 2) if radius <= 8 else int(radius)
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).double()
    disk = disk / disk.sum()
    size = 3 if radius <= 8 else 5
    blur = ops.gaussian_kernel(alias_sigma, (size // 2) / alias_sigma, torch.float64)
    smooth = ops.correlate(disk[None, None], blur[:, None] * blur[None, :], "mirror")[0, 0]
    return smooth.to(dtype)


@register(
    "defocus_blur",
    cifar10c=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)),
    imagenet_c=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
)
def defocus_blur(
    x: Tensor, disk: tuple[float, float], generator: torch.Generator, table: str
) -> Tensor:
    """A disk kernel (radius, anti-alias sigma), mirrored borders (OpenCV's ``filter2D``)."""
    radius, alias_sigma = disk
    return ops.correlate(x, _disk(radius, alias_sigma, x.dtype).to(x.device), "mirror")


@register(
    "glass_blur",
    cifar10c=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    imagenet_c=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
)
def glass_blur(
    x: Tensor, glass: tuple[float, int, int], generator: torch.Generator, table: str
) -> Tensor:
    """Blur (sigma), 8-bit truncation, local pixel moves (up to ``delta``, ``iterations``
    sweeps from the bottom right), blur again.

    As in the reference code, the "swap" of two pixels of a colour image copies the far
    pixel over the near one (NumPy views), so it is implemented as that copy.
    """
    sigma, delta, iterations = glass
    x = torch.floor(ops.gaussian_filter(x, sigma) * 255) / 255
    b, _, h, w = x.shape
    rows, cols = range(h - delta, delta, -1), range(w - delta, delta, -1)
    moves = torch.randint(
        -delta, delta, (iterations, len(rows), len(cols), 2, b),
        generator=generator, device=x.device,
    )  # fmt: skip
    batch = torch.arange(b, device=x.device)
    for sweep in moves:
        for i, row in enumerate(rows):
            for j, col in enumerate(cols):
                dx, dy = sweep[i, j]
                x[batch, :, row, col] = x[batch, :, row + dy, col + dx]
    return ops.gaussian_filter(x, sigma)


@register(
    "motion_blur",
    cifar10c=((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5)),
    imagenet_c=((10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0)),
)
def motion_blur(
    x: Tensor, streak: tuple[int, float], generator: torch.Generator, table: str
) -> Tensor:
    """A one-sided streak (ImageMagick's radius and sigma) at a uniform angle in
    [-45, 45] degrees per image."""
    radius, sigma = streak
    angles = ops.uniform(-45, 45, (x.shape[0],), generator, x)
    return ops.streak(x, radius, sigma, angles)


def _factors(start: float, stop: float, step: float) -> tuple[float, ...]:
    return tuple(float(f) for f in np.arange(start, stop, step))  # NumPy's own end point


@register(
    "zoom_blur",
    cifar10c=tuple(_factors(1, stop, 0.01) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    imagenet_c=(
        _factors(1, 1.11, 0.01), _factors(1, 1.16, 0.01), _factors(1, 1.21, 0.02),
        _factors(1, 1.26, 0.02), _factors(1, 1.31, 0.03),
    ),
)  # fmt: skip
def zoom_blur(
    x: Tensor, factors: tuple[float, ...], generator: torch.Generator, table: str
) -> Tensor:
    """The mean of the image and its centre zoomed by each factor (CIFAR-10-C cuts each zoom
    around the centre, ``imagecorruptions`` from the top left)."""
    h, w = x.shape[-2:]
    total = x.clone()
    for factor in factors:
        zoomed = ops.clipped_zoom(x, factor, "centre" if table == "cifar10c" else "none")
        total += zoomed[..., :h, :w]
    return total / (len(factors) + 1)
