"""Training augmentation with kornia: geometric transforms shared by image, segmentation and
depth, photometric transforms on the image only."""

from __future__ import annotations

from typing import Annotated

import kornia.augmentation as K
import torch
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
)
from torch import nn

from workbench.errors import OptionModel

# The augmentation the digits studies train with (:class:`AugmentOptions`): small
# affine changes, contrast, brightness and blur, as handwriting and scanning vary.
DIGITS_AUGMENT = {
    "degrees": 12,
    "translate": 0.08,
    "scale": [0.85, 1.1],
    "contrast": 0.3,
    "brightness": 0.2,
    "blur_sigma": [0.1, 1.0],
}


class BatchAugment(nn.Module):
    """Augments a batch dict (``image``, ``seg``, ``depth``) in place of the DataModule's batch.

    Segmentation is shifted by one during the transform so that regions padded in by rotation
    or translation come out as -1 (no label), as does depth (0 = no label).
    """

    def __init__(self, geometric: list[nn.Module], photometric: list[nn.Module]):
        super().__init__()
        self.geometric = (
            K.AugmentationSequential(*geometric, data_keys=["input", "mask", "mask"])
            if geometric
            else None
        )
        self.photometric = K.AugmentationSequential(*photometric) if photometric else None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = batch["image"]
        if self.geometric is not None:
            seg = (batch["seg"] + 1).unsqueeze(1).float()
            depth = batch["depth"].unsqueeze(1)
            image, seg, depth = self.geometric(image, seg, depth)
            batch = {**batch, "seg": seg.squeeze(1).round().long() - 1, "depth": depth.squeeze(1)}
        if self.photometric is not None:
            image = self.photometric(image)
        return {**batch, "image": image.clamp(0, 1)}


def _ordered(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    if pair is not None and pair[0] > pair[1]:
        raise ValueError(f"needs low <= high, got {list(pair)}")
    return pair


_Range = Annotated[
    tuple[NonNegativeFloat, NonNegativeFloat] | None, Field(strict=False), AfterValidator(_ordered)
]


class AugmentOptions(OptionModel):
    """The augmentation options of a config (0 / None turns a transform off).

    Attributes:
        degrees: maximum rotation, in [0, 360].
        translate: maximum shift as a fraction of the image side, in [0, 1].
        scale: range of zoom factors ``[low, high]``.
        hflip: random horizontal flips (off for digits, which flips change).
        brightness, contrast, saturation: ColorJitter strengths, at least 0.
        blur_sigma: Gaussian blur sigma range ``[low, high]``.
        p: probability of each transform, in [0, 1].
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    degrees: float = Field(0.0, ge=0, le=360)
    translate: float = Field(0.0, ge=0, le=1)
    scale: _Range = None
    hflip: bool = False
    brightness: float = Field(0.0, ge=0)
    contrast: float = Field(0.0, ge=0)
    saturation: float = Field(0.0, ge=0)
    blur_sigma: _Range = None
    p: float = Field(0.8, ge=0, le=1)

    def build(self) -> BatchAugment:
        """Returns the batch augmentation of these options."""
        geometric: list[nn.Module] = []
        if self.degrees or self.translate or self.scale:
            translate = (self.translate, self.translate) if self.translate else None
            geometric.append(
                K.RandomAffine(
                    degrees=self.degrees, translate=translate, scale=self.scale, p=self.p
                )
            )
        if self.hflip:
            geometric.append(K.RandomHorizontalFlip(p=0.5))
        photometric: list[nn.Module] = []
        if self.brightness or self.contrast or self.saturation:
            photometric.append(
                K.ColorJitter(self.brightness, self.contrast, self.saturation, p=self.p)
            )
        if self.blur_sigma:
            photometric.append(K.RandomGaussianBlur((5, 5), self.blur_sigma, p=self.p))
        return BatchAugment(geometric, photometric)


def build_augment(
    degrees: float = 0.0,
    translate: float = 0.0,
    scale: tuple[float, float] | None = None,
    hflip: bool = False,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    blur_sigma: tuple[float, float] | None = None,
    p: float = 0.8,
) -> BatchAugment:
    """Builds the batch augmentation from config options (0 / None turns a transform off).

    Args:
        degrees: maximum rotation.
        translate: maximum shift as a fraction of the image side.
        scale: range of zoom factors.
        hflip: random horizontal flips.
        brightness: ColorJitter brightness strength.
        contrast: ColorJitter contrast strength.
        saturation: ColorJitter saturation strength.
        blur_sigma: Gaussian blur sigma range.
        p: probability of each transform.

    The ranges are those of :class:`AugmentOptions`.

    Raises:
        WorkbenchError: an option out of range, naming it.
    """
    options = {
        "degrees": degrees,
        "translate": translate,
        "scale": scale,
        "hflip": hflip,
        "brightness": brightness,
        "contrast": contrast,
        "saturation": saturation,
        "blur_sigma": blur_sigma,
        "p": p,
    }
    return AugmentOptions.from_dict(options).build()
