"""The corruption registry: each corruption is a pure function and its parameters at
severities 1 to 5 in the two tables of Hendrycks and Dietterich (2019).

* ``cifar10c``: the parameters of CIFAR-10-C (``make_cifar_c.py``), made for 32-pixel images
  and the default, since workbench images are 8 to 64 pixels wide;
* ``imagenet_c``: those of ImageNet-C as the ``imagecorruptions`` package (1.1.2) applies them
  at every size from 32 pixels up, the table its parity test compares with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from workbench.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)
PARAMETER_SETS = ("cifar10c", "imagenet_c")
"""The parameter tables; ``cifar10c`` is the default."""

CorruptionFn = Callable[[Tensor, Any, torch.Generator, str], Tensor]
"""``fn(x, parameters, generator, table) -> x`` on ``B x C x H x W`` floats in [0, 1]."""


@dataclass(frozen=True)
class Corruption:
    """A corruption function and its parameters per severity in each table."""

    fn: CorruptionFn
    cifar10c: tuple[Any, ...]
    imagenet_c: tuple[Any, ...]

    def parameters(self, table: str, severity: int) -> Any:
        """Returns the parameters of ``severity`` (1 to 5) in ``table``."""
        return getattr(self, table)[severity - 1]


CORRUPTIONS: Registry[Corruption] = Registry("corruption")
"""Every common corruption by name: the fifteen of the benchmark and the four extra ones."""


def register(
    name: str, *, cifar10c: Sequence[Any], imagenet_c: Sequence[Any]
) -> Callable[[CorruptionFn], CorruptionFn]:
    """Returns a decorator that registers a corruption function with its two tables."""

    def decorate(fn: CorruptionFn) -> CorruptionFn:
        assert len(cifar10c) == len(imagenet_c) == len(SEVERITIES), name
        CORRUPTIONS.add(name, Corruption(fn, tuple(cifar10c), tuple(imagenet_c)))
        return fn

    return decorate
