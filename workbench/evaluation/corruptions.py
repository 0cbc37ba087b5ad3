"""Common corruptions at severities 1 to 5 (Hendrycks & Dietterich 2019), as pure functions.

Every corruption maps a float batch ``B x C x H x W`` in [0, 1] (one or three channels) to a
batch of the same shape in [0, 1]. The parameters are those of CIFAR-10-C, the benchmark's
small-image variant, since workbench images are 8 to 64 pixels wide. Random corruptions
(the noises, the motion direction) draw from a ``torch.Generator`` seeded with ``seed``, so
the same call gives the same images.

Differences from the original code, all for lack of ImageMagick / OpenCV: motion blur uses
kornia's line kernel (sizes 3 to 7) instead of ImageMagick's Gaussian-weighted streak, and the
defocus disk is blurred by kornia's Gaussian filter instead of OpenCV's.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)

Corruption = Callable[[Tensor, int, torch.Generator], Tensor]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")
"""``fn(x, severity, generator) -> x`` by name."""


def corrupt(x: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """Applies the corruption ``name`` at ``severity`` (1 to 5) to a batch.

    Args:
        x: float images ``B x C x H x W`` in [0, 1], ``C`` is 1 or 3.
        name: a key of :data:`CORRUPTIONS`.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the corruption's random draws.

    Returns:
        the corrupted batch, same shape and dtype, in [0, 1].

    Raises:
        WorkbenchError: unknown name, severity outside 1-5, or a batch of the wrong shape/range.
    """
    fn = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise WorkbenchError(f"corruption severity: must be 1 to 5, got {severity!r}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise WorkbenchError(
            f"corruption input: expected B x C x H x W with C = 1 or 3, got {tuple(x.shape)}"
        )
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise WorkbenchError("corruption input: images must lie in [0, 1]")
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    return fn(x, severity, generator).clamp(0, 1).to(x.dtype)


def _normal(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Additive Gaussian noise with standard deviation 0.04 to 0.10."""
    c = (0.04, 0.06, 0.08, 0.09, 0.10)[severity - 1]
    return x + c * _normal(x, generator)


@CORRUPTIONS.register("shot_noise")
def shot_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Poisson noise: photon counts ``Poisson(x * c) / c`` with ``c`` from 500 down to 50."""
    c = (500.0, 250.0, 100.0, 75.0, 50.0)[severity - 1]
    return torch.poisson(x * c, generator=generator) / c


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Salt-and-pepper noise on 1% to 7% of the values (half salt, half pepper)."""
    amount = (0.01, 0.02, 0.03, 0.05, 0.07)[severity - 1]
    hit = _uniform(x, generator) < amount
    salt = _uniform(x, generator) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


@CORRUPTIONS.register("speckle_noise")
def speckle_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Multiplicative noise ``x + x * N(0, c)`` with ``c`` from 0.06 to 0.2."""
    c = (0.06, 0.10, 0.12, 0.16, 0.20)[severity - 1]
    return x + x * c * _normal(x, generator)


def _odd(size: float) -> int:
    return max(3, 2 * math.ceil(size) + 1)


@CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Gaussian blur with sigma 0.4 to 1.0 pixels."""
    sigma = (0.4, 0.6, 0.7, 0.8, 1.0)[severity - 1]
    size = _odd(3 * sigma)
    return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma))


@CORRUPTIONS.register("defocus_blur")
def defocus_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A disk kernel (radius 0.3 to 1.5 pixels) softened by a Gaussian (anti-aliasing)."""
    radius, alias = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))[severity - 1]
    half = 1 if radius <= 1 else math.ceil(radius)
    grid = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).to(x.dtype)
    disk = disk / disk.sum()
    size = 2 * half + 1
    kernel = kornia.filters.gaussian_blur2d(disk[None, None], (size, size), (alias, alias))[0]
    return kornia.filters.filter2d(x, kernel / kernel.sum(), border_type="reflect")


@CORRUPTIONS.register("motion_blur")
def motion_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A straight streak of 3 to 7 pixels at a random angle in [-45, 45] degrees per image."""
    size = (3, 3, 5, 5, 7)[severity - 1]
    angle = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) * 90 - 45
    direction = torch.zeros_like(angle)
    return kornia.filters.motion_blur(x, size, angle, direction, border_type="reflect")


@CORRUPTIONS.register("contrast")
def contrast(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Pulls every image towards its mean grey: factor 0.75 down to 0.15."""
    c = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


@CORRUPTIONS.register("brightness")
def brightness(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Adds 0.05 to 0.3 to the HSV value (to the grey level of one-channel images)."""
    c = (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1]
    if x.shape[1] == 1:
        return x + c
    hsv = kornia.color.rgb_to_hsv(x)
    hsv = torch.cat([hsv[:, :2], (hsv[:, 2:] + c).clamp(0, 1)], dim=1)
    return kornia.color.hsv_to_rgb(hsv)


@CORRUPTIONS.register("jpeg_compression")
def jpeg_compression(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A JPEG round trip (PIL) at quality 80 down to 40."""
    quality = (80, 65, 58, 50, 40)[severity - 1]
    pixels = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    out = []
    for image in pixels.numpy():
        mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        buffer = io.BytesIO()
        mode_image.save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
        out.append(decoded.reshape(image.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype)


@CORRUPTIONS.register("pixelate")
def pixelate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Box-downsamples to 95% down to 65% of the size, then scales back up (nearest)."""
    c = (0.95, 0.9, 0.85, 0.75, 0.65)[severity - 1]
    height, width = x.shape[-2:]
    small = F.interpolate(x, (max(1, int(height * c)), max(1, int(width * c))), mode="area")
    return F.interpolate(small, (height, width), mode="nearest")
