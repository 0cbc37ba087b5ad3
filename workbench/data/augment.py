"""Training augmentation with kornia: geometric transforms shared by image, segmentation and
depth, photometric transforms on the image only."""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

# The augmentation the digits studies train with (options of :func:`build_augment`): small
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
        hflip: random horizontal flips (off for digits, which flips change).
        brightness, contrast, saturation: ColorJitter strengths.
        blur_sigma: Gaussian blur sigma range.
        p: probability of each transform.
    """
    geometric: list[nn.Module] = []
    if degrees or translate or scale:
        geometric.append(
            K.RandomAffine(
                degrees=degrees,
                translate=(translate, translate) if translate else None,
                scale=scale,
                p=p,
            )
        )
    if hflip:
        geometric.append(K.RandomHorizontalFlip(p=0.5))
    photometric: list[nn.Module] = []
    if brightness or contrast or saturation:
        photometric.append(K.ColorJitter(brightness, contrast, saturation, p=p))
    if blur_sigma:
        photometric.append(K.RandomGaussianBlur((5, 5), blur_sigma, p=p))
    return BatchAugment(geometric, photometric)
