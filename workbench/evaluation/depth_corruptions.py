"""Corruptions that need the scene's depth, at severities 1 to 5, in the spirit of 3D Common
Corruptions (Kar et al. 2022): only rendered data, whose depth is exact, allows them.

Every corruption maps a float batch ``B x C x H x W`` in [0, 1] and its depth ``B x H x W``
(metres along the camera axis, 0 = no surface: sky, treated as infinitely far) to a batch of the
same shape in [0, 1]. Depth scales are relative to each image's own median depth, so the same
severity means the same thing for a tabletop and a street.

* ``near_focus`` / ``far_focus``: a thin-lens defocus focused on the near (10th percentile) or
  far (90th percentile) depth: the blur of a pixel grows with ``|1/d - 1/d_focus|``, drawn from
  five Gaussian levels up to sigma 0.6 to 2.0 pixels;
* ``fog_3d``: Koschmieder's law ``x t + A (1 - t)``, ``t = exp(-beta d)``, with ``beta`` such that
  the median depth keeps 80% down to 15% of its contrast, sky fully fogged;
* ``z_motion_blur``: the camera moving forward during the exposure: each pixel streaks away
  from the image centre by up to 4% to 20% of its distance to it, scaled by the median depth
  over its own depth (near things streak most, the sky not at all);
* ``low_light``: exposure cut to 60% down to 15% (in linear light) with photon shot noise and
  read noise growing as the light falls (an ISO boost).
"""

from __future__ import annotations

from collections.abc import Callable

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.registry import Registry

DepthCorruption = Callable[[Tensor, Tensor, int, torch.Generator], Tensor]
DEPTH_CORRUPTIONS: Registry[DepthCorruption] = Registry("depth corruption")
"""``fn(x, depth, severity, generator) -> x`` by name."""

FOG_GREY = 0.8
BLUR_LEVELS = 5


def corrupt_with_depth(x: Tensor, depth: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """Applies the depth-aware corruption ``name`` at ``severity`` (1 to 5) to a batch.

    Args:
        x: float images ``B x C x H x W`` in [0, 1], ``C`` is 1 or 3.
        depth: metres ``B x H x W`` (0 = no surface).
        name: a key of :data:`DEPTH_CORRUPTIONS`.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the corruption's random draws.

    Raises:
        WorkbenchError: an unknown name, a severity outside 1-5, or a batch and depth of
            mismatched shapes.
    """
    fn = DEPTH_CORRUPTIONS.get(name)
    if severity not in (1, 2, 3, 4, 5):
        raise WorkbenchError(f"corruption severity: must be 1 to 5, got {severity!r}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise WorkbenchError(
            f"corruption input: expected B x C x H x W with C = 1 or 3, got {tuple(x.shape)}"
        )
    if tuple(depth.shape) != (x.shape[0], *x.shape[-2:]):
        raise WorkbenchError(
            f"depth: expected {(x.shape[0], *x.shape[-2:])} to match the images, "
            f"got {tuple(depth.shape)}"
        )
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    return fn(x, depth.to(x.dtype), severity, generator).clamp(0, 1).to(x.dtype)


def _quantile(depth: Tensor, q: float) -> Tensor:
    """Per image, the ``q`` quantile of the depths of surfaces (1 m for an image without any)."""
    values = []
    for d in depth:
        surface = d[d > 0]
        values.append(surface.quantile(q) if len(surface) else d.new_tensor(1.0))
    return torch.stack(values).view(-1, 1, 1)


def _inverse(depth: Tensor) -> Tensor:
    """``1 / depth``, 0 for pixels without a surface (infinitely far)."""
    return torch.where(depth > 0, 1.0 / depth.clamp(min=1e-6), torch.zeros_like(depth))


def _defocus(x: Tensor, depth: Tensor, severity: int, focus_quantile: float) -> Tensor:
    top = (0.6, 0.9, 1.2, 1.6, 2.0)[severity - 1]
    focus = _quantile(depth, focus_quantile)
    circle = (_inverse(depth) - 1.0 / focus).abs() * _quantile(depth, 0.5)  # in units of 1/median
    level = (circle / circle.flatten(1).amax(1).clamp(min=1e-6).view(-1, 1, 1)) * (BLUR_LEVELS - 1)
    stack = [x]
    for i in range(1, BLUR_LEVELS):
        sigma = top * i / (BLUR_LEVELS - 1)
        size = 2 * int(3 * sigma) + 1
        stack.append(kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma)))
    stack = torch.stack(stack)  # L x B x C x H x W
    low = level.floor().long().clamp(0, BLUR_LEVELS - 1)
    high = (low + 1).clamp(max=BLUR_LEVELS - 1)
    weight = (level - low).unsqueeze(1)

    def pick(index: Tensor) -> Tensor:
        return stack.gather(0, index[None, :, None].expand(1, *x.shape))[0]

    return (1 - weight) * pick(low) + weight * pick(high)


@DEPTH_CORRUPTIONS.register("near_focus")
def near_focus(x: Tensor, depth: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Focused on the near field; far things and the sky blur."""
    return _defocus(x, depth, severity, 0.1)


@DEPTH_CORRUPTIONS.register("far_focus")
def far_focus(x: Tensor, depth: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Focused on the far field; near things blur."""
    return _defocus(x, depth, severity, 0.9)


@DEPTH_CORRUPTIONS.register("fog_3d")
def fog_3d(x: Tensor, depth: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Fog by Koschmieder's law from the true depth; the sky takes the fog's grey."""
    kept = (0.8, 0.6, 0.4, 0.25, 0.15)[severity - 1]
    beta = -torch.log(torch.tensor(kept)) / _quantile(depth, 0.5)
    transmission = torch.where(depth > 0, torch.exp(-beta * depth), torch.zeros_like(depth))
    t = transmission.unsqueeze(1)
    return x * t + FOG_GREY * (1 - t)


@DEPTH_CORRUPTIONS.register("z_motion_blur")
def z_motion_blur(x: Tensor, depth: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Forward camera motion: radial streaks from the centre, longer for nearer things."""
    reach = (0.04, 0.07, 0.1, 0.15, 0.2)[severity - 1]
    samples = 9
    batch, _, height, width = x.shape
    ys = torch.linspace(-1, 1, height, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, width, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(batch, -1, -1, -1)
    nearness = (_quantile(depth, 0.5) * _inverse(depth)).clamp(max=4.0).unsqueeze(-1)
    total = torch.zeros_like(x)
    for k in range(samples):
        shrink = 1 - reach * nearness * k / (samples - 1)
        total += F.grid_sample(x, grid * shrink, mode="bilinear", padding_mode="border",
                               align_corners=True)  # fmt: skip
    return total / samples


@DEPTH_CORRUPTIONS.register("low_light")
def low_light(x: Tensor, depth: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Less light and more sensor noise: exposure 60% to 15% in linear light, shot noise of
    ``photons`` = 400 down to 40 per unit exposure, read noise 0.01 to 0.05."""
    exposure = (0.6, 0.45, 0.3, 0.2, 0.15)[severity - 1]
    photons = (400.0, 200.0, 100.0, 60.0, 40.0)[severity - 1]
    read = (0.01, 0.02, 0.03, 0.04, 0.05)[severity - 1]
    linear = x.clamp(0, 1) ** 2.2 * exposure
    noisy = torch.poisson(linear * photons, generator=generator) / photons
    noisy = noisy + read * torch.randn(x.shape, generator=generator, device=x.device,
                                       dtype=x.dtype)  # fmt: skip
    return noisy.clamp(0, 1) ** (1 / 2.2)
