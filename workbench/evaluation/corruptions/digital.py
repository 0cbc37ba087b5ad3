"""Digital corruptions: brightness, contrast, elastic transform, pixelate, JPEG, and
saturate (an extra one)."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from workbench.evaluation.corruptions import ops
from workbench.evaluation.corruptions.base import register


def _with_hsv_channel(x: Tensor, channel: int, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Applies ``fn`` to one HSV channel of a colour batch (value 2, saturation 1)."""
    hsv = kornia.color.rgb_to_hsv(x)
    parts = list(hsv.split(1, dim=1))
    parts[channel] = fn(parts[channel]).clamp(0, 1)
    return kornia.color.hsv_to_rgb(torch.cat(parts, dim=1))


@register(
    "brightness",
    cifar10c=(0.05, 0.1, 0.15, 0.2, 0.3),
    imagenet_c=(0.1, 0.2, 0.3, 0.4, 0.5),
)
def brightness(x: Tensor, shift: float, generator: torch.Generator, table: str) -> Tensor:
    """Adds ``shift`` to the HSV value (to the grey level of one-channel images)."""
    if x.shape[1] == 1:
        return x + shift
    return _with_hsv_channel(x, 2, lambda v: v + shift)


@register(
    "saturate",
    cifar10c=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    imagenet_c=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
)
def saturate(x: Tensor, p: tuple[float, float], generator: torch.Generator, table: str) -> Tensor:
    """Scales and shifts the HSV saturation. One-channel images have none and come back
    unchanged (the reference saturates them as grey RGB at hue 0 and keeps the red channel,
    which is the value, so unchanged too)."""
    if x.shape[1] == 1:
        return x.clone()
    scale, shift = p
    return _with_hsv_channel(x, 1, lambda s: s * scale + shift)


@register(
    "contrast",
    cifar10c=(0.75, 0.5, 0.4, 0.3, 0.15),
    imagenet_c=(0.4, 0.3, 0.2, 0.1, 0.05),
)
def contrast(x: Tensor, factor: float, generator: torch.Generator, table: str) -> Tensor:
    """Pulls each channel towards its mean by ``factor``."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor + mean


@register(
    "jpeg_compression",
    cifar10c=(80, 65, 58, 50, 40),
    imagenet_c=(25, 18, 15, 10, 7),
)
def jpeg_compression(x: Tensor, quality: int, generator: torch.Generator, table: str) -> Tensor:
    """A JPEG round trip (PIL) at ``quality``."""
    pixels = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    out = []
    for image in pixels.numpy():
        mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        buffer = io.BytesIO()
        mode_image.save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
        out.append(decoded.reshape(image.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype)


@lru_cache(maxsize=32)
def _box(size_in: int, size_out: int) -> Tensor:
    return ops.pil_box_weights(size_in, size_out)


@register(
    "pixelate",
    cifar10c=(0.95, 0.9, 0.85, 0.75, 0.65),
    imagenet_c=(0.6, 0.5, 0.4, 0.3, 0.25),
)
def pixelate(x: Tensor, factor: float, generator: torch.Generator, table: str) -> Tensor:
    """PIL's box filter down to ``factor`` of the size, then back up: box again (CIFAR-10-C)
    or nearest (``imagecorruptions``)."""
    h, w = x.shape[-2:]
    small_h, small_w = max(1, int(h * factor)), max(1, int(w * factor))
    down_h, down_w = _box(h, small_h).to(x), _box(w, small_w).to(x)
    small = torch.einsum("ih,bchw,jw->bcij", down_h, x, down_w)
    if table == "cifar10c":
        up_h, up_w = _box(small_h, h).to(x), _box(small_w, w).to(x)
        return torch.einsum("ih,bchw,jw->bcij", up_h, small, up_w)
    return F.interpolate(small, (h, w), mode="nearest-exact")


def _affine(x: Tensor, spread: float, generator: torch.Generator) -> Tensor:
    """CIFAR-10-C's random affine: three points around the centre moved by up to ``spread``
    pixels, the image warped to match (bilinear, reflected borders)."""
    b, _, h, w = x.shape
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float64)
    side = min(h, w) // 3
    source = torch.stack([
        centre + side,
        torch.stack([centre[0] + side, centre[1] - side]),
        centre - side,
    ])  # fmt: skip
    moved = source + ops.uniform(-spread, spread, (b, 3, 2), generator, x).cpu()
    ones = torch.ones(b, 3, 1, dtype=torch.float64)
    # the affine map taking the moved points back to the source points (output -> input)
    inverse = torch.linalg.solve(torch.cat([moved, ones], 2), source.expand(b, 3, 2))
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
        indexing="ij",
    )  # fmt: skip
    points = torch.stack([cols, rows, torch.ones_like(rows)], -1).reshape(-1, 3)
    mapped = (points @ inverse).reshape(b, h, w, 2)  # (x, y) as OpenCV's points
    return _sample(x, mapped[..., 1], mapped[..., 0])


def _sample(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Bilinear samples at pixel coordinates, half-sample reflected borders (SciPy's
    ``map_coordinates``, order 1, mode ``reflect``)."""
    h, w = x.shape[-2:]
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], dim=-1)
    return F.grid_sample(
        x, grid.to(x), mode="bilinear", padding_mode="reflection", align_corners=False
    )


def _displacements(
    x: Tensor, spread: float, sigma: tuple[float, float], scale: float, g: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Per-pixel shifts: uniform noise in ``[-spread, spread)`` smoothed by a Gaussian
    (3 sigma, reflected), times ``scale``."""
    b, _, h, w = x.shape
    noise = ops.uniform(-spread, spread, (b, 2, h, w), g, x)
    smooth = ops.gaussian_filter(noise, sigma, mode="reflect", truncate=3.0) * scale
    return smooth[:, 0].to(x.dtype), smooth[:, 1].to(x.dtype)


@register(
    "elastic_transform",
    cifar10c=((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
              (0.1, 0.03, 0.03)),
    imagenet_c=(12.5, 16.25, 21.25, 25.0, 30.0),
)  # fmt: skip
def elastic_transform(
    x: Tensor, p: float | tuple[float, float, float], generator: torch.Generator, table: str
) -> Tensor:
    """Smoothed random pixel shifts. CIFAR-10-C: a random affine first, then shifts of scale
    ``p[0]`` and smoothing ``p[1]`` (both times the image size, as its ``IMSIZE``);
    ``imagecorruptions`` (ImageNet-C's table without the affine): noise of 0.5% of the height
    smoothed by 1% of each side, times ``p``."""
    h, w = x.shape[-2:]
    if table == "cifar10c":
        scale, smoothing, spread = (v * h for v in p)
        x = _affine(x, spread, generator)
        if scale == 0:
            return x
        dx, dy = _displacements(x, 1.0, (smoothing, smoothing), scale, generator)
    else:
        dx, dy = _displacements(x, 0.005 * h, (0.01 * h, 0.01 * w), p, generator)
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=x.dtype, device=x.device),
        torch.arange(w, dtype=x.dtype, device=x.device),
        indexing="ij",
    )  # fmt: skip
    return _sample(x, rows + dy, cols + dx)
