"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle."""

from __future__ import annotations

import torch
from torch import Tensor

from workbench.evaluation.corruptions.base import register


def _normal(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


@register(
    "gaussian_noise",
    cifar10c=(0.04, 0.06, 0.08, 0.09, 0.10),
    imagenet_c=(0.08, 0.12, 0.18, 0.26, 0.38),
)
def gaussian_noise(x: Tensor, std: float, generator: torch.Generator, table: str) -> Tensor:
    """Additive Gaussian noise of standard deviation ``std``."""
    return x + std * _normal(x, generator)


@register(
    "shot_noise",
    cifar10c=(500.0, 250.0, 100.0, 75.0, 50.0),
    imagenet_c=(60.0, 25.0, 12.0, 5.0, 3.0),
)
def shot_noise(x: Tensor, photons: float, generator: torch.Generator, table: str) -> Tensor:
    """Poisson noise: photon counts ``Poisson(x * photons) / photons``."""
    return torch.poisson(x * photons, generator=generator) / photons


@register(
    "impulse_noise",
    cifar10c=(0.01, 0.02, 0.03, 0.05, 0.07),
    imagenet_c=(0.03, 0.06, 0.09, 0.17, 0.27),
)
def impulse_noise(x: Tensor, amount: float, generator: torch.Generator, table: str) -> Tensor:
    """Salt and pepper on a fraction ``amount`` of the values (half salt, half pepper)."""
    hit = _uniform(x, generator) < amount
    salt = _uniform(x, generator) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


@register(
    "speckle_noise",
    cifar10c=(0.06, 0.10, 0.12, 0.16, 0.20),
    imagenet_c=(0.15, 0.20, 0.35, 0.45, 0.60),
)
def speckle_noise(x: Tensor, std: float, generator: torch.Generator, table: str) -> Tensor:
    """Multiplicative noise ``x + x * N(0, std)``."""
    return x + x * std * _normal(x, generator)
