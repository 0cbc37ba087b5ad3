"""The common corruptions at severities 1 to 5 (Hendrycks & Dietterich 2019), in torch for
batches: the fifteen of the benchmark (Gaussian, shot and impulse noise; defocus, glass, motion
and zoom blur; snow, frost, fog; brightness, contrast, elastic transform, pixelate, JPEG) and
the four extra ones (speckle noise, Gaussian blur, spatter, saturate).

Every corruption maps a float batch ``B x C x H x W`` in [0, 1] (one or three channels) to a
batch of the same shape in [0, 1], with the parameters of one of two tables (see
:mod:`.base`): ``cifar10c`` (the default, for small images) or ``imagenet_c`` (as the
``imagecorruptions`` package applies it, from 32 pixels up). Random draws (noise, angles,
frost crops, clouds, pixel moves) come from a ``torch.Generator`` seeded with ``seed``, so the
same call gives the same images.

Each function follows the reference code's operations, borders and roundings
(:mod:`.ops`); where the reference needs a library this one replaces, the docstring says what
differs: ImageMagick's motion blur is ``imagecorruptions``' re-implementation of it; CIFAR-10-C's
affine warp reflects borders by half a pixel where OpenCV mirrors them; spatter's water drops
find their edges with kornia's Canny (the gradient's L2 norm; OpenCV's uses the L1 norm).
Frost uses the benchmark's own five frost photographs (``textures/NOTICE``).
``benchmarks/bench_corruptions.py`` measures every difference against ``imagecorruptions`` and
``tests/evaluation/test_corruption_parity.py`` holds them to the published tolerances.
"""

from __future__ import annotations

import torch
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.evaluation.corruptions import blur, digital, noise, weather  # noqa: F401 (register)
from workbench.evaluation.corruptions.base import CORRUPTIONS, PARAMETER_SETS, SEVERITIES

__all__ = ["CORRUPTIONS", "PARAMETER_SETS", "SEVERITIES", "check_parameters", "corrupt"]

MIN_IMAGENET_C_SIDE = 32
"""The smallest side ``imagenet_c`` parameters accept (``imagecorruptions``' own limit)."""


def check_parameters(parameters: str, height: int, width: int) -> None:
    """Checks that the table ``parameters`` exists and fits ``height x width`` images.

    Raises:
        WorkbenchError: an unknown table, or ``imagenet_c`` on images below 32 pixels.
    """
    if parameters not in PARAMETER_SETS:
        raise WorkbenchError(
            f"corruption parameters: unknown {parameters!r}; known: {', '.join(PARAMETER_SETS)}"
        )
    if parameters == "imagenet_c" and min(height, width) < MIN_IMAGENET_C_SIDE:
        raise WorkbenchError(
            f"corruption parameters imagenet_c: images are {height} x {width} pixels, the "
            f"table needs {MIN_IMAGENET_C_SIDE} or more; use cifar10c"
        )


def corrupt(
    x: Tensor, name: str, severity: int, seed: int = 0, parameters: str = "cifar10c"
) -> Tensor:
    """Applies the corruption ``name`` at ``severity`` (1 to 5) to a batch.

    Args:
        x: float images ``B x C x H x W`` in [0, 1], ``C`` is 1 or 3.
        name: a key of :data:`CORRUPTIONS`.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the corruption's random draws.
        parameters: the table, ``cifar10c`` or ``imagenet_c``.

    Returns:
        the corrupted batch, same shape and dtype, in [0, 1].

    Raises:
        WorkbenchError: unknown name or table, severity outside 1-5, a batch of the wrong
            shape or range, or images below 32 pixels with ``imagenet_c``.
    """
    corruption = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise WorkbenchError(f"corruption severity: must be 1 to 5, got {severity!r}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise WorkbenchError(
            f"corruption input: expected B x C x H x W with C = 1 or 3, got {tuple(x.shape)}"
        )
    check_parameters(parameters, *x.shape[-2:])
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise WorkbenchError("corruption input: images must lie in [0, 1]")
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    setting = corruption.parameters(parameters, severity)
    out = corruption.fn(x, setting, generator, parameters)
    return out.clamp(0, 1).to(x.dtype)
