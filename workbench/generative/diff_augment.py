"""Differentiable augmentation for GAN critics (DiffAugment, Zhao et al. 2020).

The critic sees real and generated images through the same random, differentiable transforms
(brightness, contrast, translation by up to 1/8 of the side, a cutout of half the side), so it
cannot memorise the few real images and the generator still gets gradients through the
transforms. The policy is the paper's ``color,translation,cutout`` built from kornia's
augmentations, which are differentiable in their input.
"""

from __future__ import annotations

import kornia.augmentation as K
from torch import Tensor, nn


class DiffAugment(nn.Module):
    """Random colour, translation and cutout, drawn per image, differentiable in the images.

    Args:
        translation: largest shift as a fraction of the side.
        cutout: side of the erased square as a fraction of the image side.
    """

    def __init__(self, translation: float = 0.125, cutout: float = 0.5):
        super().__init__()
        self.transforms = K.AugmentationSequential(
            K.RandomBrightness((0.5, 1.5), p=1.0),
            K.RandomContrast((0.5, 1.5), p=1.0),
            K.RandomAffine(degrees=0.0, translate=(translation, translation), p=1.0),
            K.RandomErasing(scale=(cutout**2, cutout**2), ratio=(1.0, 1.0), value=0.0, p=1.0),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Returns augmented B x C x H x W images in [0, 1] (same shape)."""
        return self.transforms(images).clamp(0, 1)
