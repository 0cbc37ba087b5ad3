"""Weather corruptions: snow, frost, fog, and spatter (water or mud drops, an extra one)."""

from __future__ import annotations

import math
from functools import lru_cache

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from workbench.evaluation.corruptions import ops
from workbench.evaluation.corruptions.base import register
from workbench.resources import textures_dir


@register(
    "snow",
    cifar10c=(
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    imagenet_c=(
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
)  # fmt: skip
def snow(x: Tensor, p: tuple, generator: torch.Generator, table: str) -> Tensor:
    """Flakes: Gaussian noise (mean, std) zoomed in, thresholded, streaked (radius, sigma) at
    -135 to -45 degrees, added twice (the layer and its half turn) to the image brightened
    towards its grey level (the image keeps a share ``p[6]``)."""
    mean, std, zoom, threshold, radius, sigma, keep = p
    b, _, h, w = x.shape
    layer = ops.normal(mean, std, (b, 1, h, w), generator, x).to(x.dtype)
    layer = ops.clipped_zoom(layer, zoom, "centre" if table == "cifar10c" else "none")
    layer = torch.where(layer < threshold, 0, layer).clamp(0, 1)
    if table == "cifar10c":  # it went through an 8-bit PNG before ImageMagick's blur
        layer = torch.floor(layer * 255) / 255
    angles = ops.uniform(-135, -45, (b,), generator, x)
    layer = ops.streak(layer, radius, sigma, angles)
    layer = (torch.round(layer * 255) / 255)[..., :h, :w]
    x = keep * x + (1 - keep) * torch.maximum(x, ops.grey(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-2, -1)


@lru_cache(maxsize=1)
def _frost_textures() -> tuple[Tensor, ...]:
    """The five frost photographs, ``3 x H x W`` in [0, 1] (see ``textures/NOTICE``)."""
    folder = textures_dir() / "frost"
    files = sorted(folder.glob("frost[1-5].*"))
    return tuple(
        torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255)
        .permute(2, 0, 1).contiguous()
        for f in files
    )  # fmt: skip


@lru_cache(maxsize=8)
def _scaled_frost(table: str, height: int, width: int) -> tuple[Tensor, ...]:
    """The textures scaled as each table does for ``height x width`` images: ImageNet-C to
    1.1 times the size that covers the image (bicubic), CIFAR-10-C to a fifth (bilinear) or,
    where a fifth is too small for the image, as ImageNet-C."""
    scaled = []
    for texture in _frost_textures():
        th, tw = texture.shape[-2:]
        cover = 1.1 * max(1.0, height / th, width / tw)
        if table == "cifar10c" and round(th * 0.2) > height and round(tw * 0.2) > width:
            size, mode = (round(th * 0.2), round(tw * 0.2)), "bilinear"
        else:
            size, mode = (math.ceil(th * cover), math.ceil(tw * cover)), "bicubic"
        out = F.interpolate(texture[None], size, mode=mode, align_corners=False)[0]
        scaled.append(torch.round(out.clamp(0, 1) * 255) / 255)  # OpenCV keeps 8 bits
    return tuple(scaled)


@register(
    "frost",
    cifar10c=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    imagenet_c=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
)
def frost(x: Tensor, p: tuple[float, float], generator: torch.Generator, table: str) -> Tensor:
    """``image_weight * x + frost_weight * crop`` of a random crop of one of five frost
    photographs per image (grey level for one-channel images)."""
    image_weight, frost_weight = p
    b, c, h, w = x.shape
    textures = _scaled_frost(table, h, w)

    def draw(high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=generator, device=generator.device))

    crops = []
    for _ in range(b):
        texture = textures[draw(len(textures))]
        top, left = draw(texture.shape[-2] - h), draw(texture.shape[-1] - w)
        crops.append(texture[:, top : top + h, left : left + w])
    layer = torch.stack(crops).to(x.device, x.dtype)
    if c == 1:
        layer = ops.grey(layer)
    return image_weight * x + frost_weight * layer


@register(
    "fog",
    cifar10c=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    imagenet_c=((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
)
def fog(x: Tensor, p: tuple[float, float], generator: torch.Generator, table: str) -> Tensor:
    """A diamond-square cloud of strength ``p[0]`` (roughness decay ``p[1]``) added, then the
    image scaled back by ``max / (max + strength)``."""
    strength, decay = p
    b, _, h, w = x.shape
    size = 1 << (max(h, w) - 1).bit_length()
    cloud = ops.plasma_fractal(b, size, decay, generator, x)[:, None, :h, :w].to(x.dtype)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * cloud) * peak / (peak + strength)


def _water(liquid: Tensor, strength: float) -> Tensor:
    """The water drops' tint weights from the liquid layer, as the reference computes them
    with OpenCV: Canny edges of the 8-bit layer (thresholds 50 and 150), the distance to them
    capped at 20, a 3 x 3 blur, histogram equalisation, an emboss kernel, another blur; times
    the layer, scaled to ``strength`` at the maximum. kornia's Canny measures the gradient's
    L2 norm where OpenCV's default is the L1 norm, and the distance is exact where OpenCV's is
    a 5 x 5 chamfer approximation; the parity test states what that leaves."""
    layer = torch.floor(liquid.clamp(0, 1) * 255)
    _, edges = kornia.filters.canny(layer, low_threshold=50, high_threshold=150, kernel_size=1)
    distance = ops.distance_to(edges > 0, cap=20).to(liquid.dtype)
    distance = ops.equalize_hist(torch.floor(ops.box_blur(distance)))
    emboss = torch.tensor([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=liquid.dtype)
    distance = ops.correlate(distance, emboss.to(liquid.device), "mirror").round().clamp(0, 255)
    weight = layer * ops.box_blur(distance)
    peak = weight.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(peak > 0, weight / peak.clamp(min=1e-12), 0) * strength


@register(
    "spatter",
    cifar10c=(
        (0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    imagenet_c=(
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
)  # fmt: skip
def spatter(x: Tensor, p: tuple, generator: torch.Generator, table: str) -> Tensor:
    """Drops from smoothed Gaussian noise (mean, std, smoothing, threshold): pale turquoise
    water added (severities 1-3) or brown mud painted over (4-5; ``p[4]`` smooths the mud's
    edge)."""
    mean, std, smoothing, threshold, spread, mud = p
    b, c, h, w = x.shape
    liquid = ops.gaussian_filter(ops.normal(mean, std, (b, 1, h, w), generator, x), smoothing)
    liquid = torch.where(liquid < threshold, 0, liquid).to(x.dtype)
    if not mud:
        colour = torch.tensor([175, 238, 238], dtype=x.dtype, device=x.device) / 255
        tint = _water(liquid, spread) * colour.view(1, 3, 1, 1)
        return x + (ops.grey(tint) if c == 1 else tint)
    mask = ops.gaussian_filter((liquid > threshold).to(x.dtype), spread)
    mask = torch.where(mask < 0.8, 0, mask)
    colour = torch.tensor([63, 42, 20], dtype=x.dtype, device=x.device) / 255
    mud_colour = mask * colour.view(1, 3, 1, 1)
    return x * (1 - mask) + (ops.grey(mud_colour) if c == 1 else mud_colour)
