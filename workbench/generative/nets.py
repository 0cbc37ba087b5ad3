"""Convolutional building blocks shared by the generative models.

DCGAN-style stacks (Radford et al. 2016) sized from the image side: a :class:`DownStack` halves
the side with stride-2 convolutions from ``S`` down to 4 x 4 (doubling the width at every
stage), an :class:`UpStack` mirrors it from a vector up to ``S`` x ``S``. Class conditioning is a
learned label embedding (``nn.Embedding``) in each model. The refiner's fully convolutional parts
(:class:`ResidualBlock`, :class:`PatchDiscriminator`) keep the image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.optim.swa_utils import AveragedModel

from workbench.errors import WorkbenchError


def num_stages(image_size: int) -> int:
    """Returns the number of stride-2 stages between ``image_size`` and 4 x 4.

    Raises:
        WorkbenchError: ``image_size`` is not a power of two of at least 8.
    """
    if image_size < 8 or image_size & (image_size - 1):
        raise WorkbenchError(
            f"model.image_size: generative models need a power of two >= 8, got {image_size}; "
            "set data.image_size to 8, 16, 32, 64, ..."
        )
    return int(math.log2(image_size)) - 2


def check_labels(labels: Sequence[int] | Tensor, classes: Sequence[str]) -> Tensor:
    """Returns ``labels`` as a long tensor after checking every one names a known class.

    Raises:
        WorkbenchError: a label outside ``0 .. len(classes) - 1``, naming it and the classes.
    """
    tensor = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    bad = tensor[(tensor < 0) | (tensor >= len(classes))]
    if len(bad):
        known = ", ".join(f"{i}={name}" for i, name in enumerate(classes))
        raise WorkbenchError(
            f"label {int(bad[0])}: the generator was not trained on this class; known classes: "
            f"{known}"
        )
    return tensor


def check_images(images: Tensor, channels: int, image_size: int, model: str) -> None:
    """Checks that ``images`` is B x ``channels`` x ``image_size`` x ``image_size``.

    Raises:
        WorkbenchError: another shape, naming the one the model was trained on.
    """
    expected = (channels, image_size, image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        got = " x ".join(map(str, images.shape[1:] if images.ndim == 4 else images.shape))
        raise WorkbenchError(
            f"{model} trained on {' x '.join(map(str, expected))} images, got {got}; resize the "
            "images (or train on this size)"
        )


def moving_average(module: nn.Module, decay: float) -> AveragedModel:
    """A frozen exponential moving average of ``module``'s weights (update it with
    ``update_parameters(module)`` after each step); the decay warms up as
    ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early weights fade fast."""

    def average(mean: Tensor, current: Tensor, count: Tensor | int) -> Tensor:
        rate = min(decay, (1 + float(count)) / (10 + float(count)))
        return mean.lerp(current, 1 - rate)

    ema = AveragedModel(module, avg_fn=average)
    ema.requires_grad_(False)
    return ema


def latents(count: int, dim: int, seed: int) -> Tensor:
    """Returns ``count`` x ``dim`` standard normal latents, the same for a seed on every device."""
    return torch.randn(count, dim, generator=torch.Generator().manual_seed(seed))


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Runs a block in eval mode without gradients and restores the module's mode after."""
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(training)


def to_numpy(images: Tensor) -> np.ndarray:
    """Turns B x C x H x W images into a float32 B x H x W x C array in [0, 1]."""
    return images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


def _maybe_sn(layer: nn.Module, spectral_norm: bool) -> nn.Module:
    return _spectral_norm(layer) if spectral_norm else layer


class DownStack(nn.Module):
    """Image ``C x S x S`` to a feature vector: stride-2 4x4 convolutions down to 4 x 4.

    Args:
        in_channels: channels of the input image.
        image_size: side ``S`` (a power of two >= 8).
        width: channels after the first stage; doubled at each further stage.
        norm: batch normalisation after every stage but the first (not for critics).
        spectral_norm: spectral normalisation of every convolution (Miyato et al. 2018).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        width: int,
        norm: bool = True,
        spectral_norm: bool = False,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(num_stages(image_size)):
            out = width * 2**stage
            layers.append(
                _maybe_sn(nn.Conv2d(channels, out, 4, 2, 1, bias=not norm), spectral_norm)
            )
            if norm and stage > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            channels = out
        self.body = nn.Sequential(*layers)
        self.out_features = channels * 16

    def forward(self, image: Tensor) -> Tensor:
        """Returns B x ``out_features``."""
        return self.body(image).flatten(1)


class UpStack(nn.Module):
    """A vector to an image ``C x S x S``: a linear layer to 4 x 4, then stride-2 transposed
    convolutions with batch normalisation, and a last one to ``out_channels`` (no activation).

    Args:
        in_features: length of the input vector.
        out_channels: channels of the output image.
        image_size: side ``S`` (a power of two >= 8).
        width: channels before the last stage; doubled towards the 4 x 4 start.
    """

    def __init__(self, in_features: int, out_channels: int, image_size: int, width: int):
        super().__init__()
        stages = num_stages(image_size)
        channels = width * 2 ** (stages - 1)
        self.start = nn.Sequential(
            nn.Linear(in_features, channels * 16, bias=False),
            nn.Unflatten(1, (channels, 4, 4)),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for _ in range(stages - 1):
            out = channels // 2
            layers += [
                nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            channels = out
        layers.append(nn.ConvTranspose2d(channels, out_channels, 4, 2, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, vector: Tensor) -> Tensor:
        """Returns B x ``out_channels`` x S x S (unbounded)."""
        return self.body(self.start(vector))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (the refiner's block in SimGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class PatchDiscriminator(nn.Module):
    """A local discriminator: one real/fake logit per image patch (a map, not a scalar).

    ``depth`` stride-2 3x3 convolutions, then a 1x1 convolution to one channel; each output cell
    sees a patch of about ``2 ** (depth + 1)`` pixels.

    Args:
        in_channels: channels of the images.
        width: channels of the first convolution; doubled at each further one.
        depth: number of stride-2 convolutions.
        spectral_norm: spectral normalisation of every convolution.
    """

    def __init__(self, in_channels: int, width: int, depth: int = 2, spectral_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(depth):
            out = width * 2**stage
            layers += [
                _maybe_sn(nn.Conv2d(channels, out, 3, 2, 1), spectral_norm),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        layers.append(_maybe_sn(nn.Conv2d(channels, 1, 1), spectral_norm))
        self.body = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        """Returns logits B x 1 x S / 2**depth x S / 2**depth."""
        return self.body(image)


def generate_images(
    module: nn.Module,
    decode: Callable[[Tensor, Tensor], Tensor],
    labels: Sequence[int] | Tensor,
    seed: int,
    latent_dim: int,
    classes: Sequence[str],
    chunk: int = 512,
) -> np.ndarray:
    """Decodes latents drawn from ``seed`` for ``labels`` in eval mode, ``chunk`` at a time.

    Returns:
        float32 N x H x W x C in [0, 1]; the same for the same seed and labels.

    Raises:
        WorkbenchError: a label the model was not trained on.
    """
    labels = check_labels(labels, classes)
    device = next(module.parameters()).device
    z = latents(len(labels), latent_dim, seed)
    with evaluating(module):
        parts = [
            decode(zs.to(device), ys.to(device))
            for zs, ys in zip(z.split(chunk), labels.split(chunk), strict=True)
        ]
    return to_numpy(torch.cat(parts))


def interpolate_images(
    module: nn.Module,
    decode: Callable[[Tensor, Tensor], Tensor],
    label: int,
    steps: int,
    seed: int,
    latent_dim: int,
    classes: Sequence[str],
) -> np.ndarray:
    """Decodes ``steps`` latents on the straight line between two prior samples drawn from
    ``seed``, all of class ``label``: float32 steps x H x W x C in [0, 1].

    Raises:
        WorkbenchError: a label the model was not trained on.
    """
    labels = check_labels([label] * steps, classes)
    device = next(module.parameters()).device
    ends = latents(2, latent_dim, seed)
    t = torch.linspace(0, 1, steps)[:, None]
    z = (1 - t) * ends[0] + t * ends[1]
    with evaluating(module):
        return to_numpy(decode(z.to(device), labels.to(device)))
