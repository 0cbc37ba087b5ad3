"""Generative augmenters in the app: load a VAE, GAN or refiner checkpoint under the data root,
sample per class, walk the latent space, refine a rendered image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from workbench.errors import WorkbenchError
from workbench.inspect.paths import resolve_under

KINDS = ("vae", "gan", "refiner")


def load_augmenter(root: str | Path, checkpoint: str) -> torch.nn.Module:
    """Loads a VAE, GAN or refiner checkpoint that lies under ``root``, in eval mode.

    Raises:
        WorkbenchError: the path leaves the root, or the file is unreadable or of another kind.
    """
    from workbench.checkpoint import load_module

    return load_module(resolve_under(root, checkpoint), KINDS)


def kind_of(module: torch.nn.Module) -> str:
    """Returns ``vae``, ``gan`` or ``refiner`` for a loaded augmenter."""
    from workbench.generative.sampling import module_kind

    return module_kind(module)


def sample_grid(generator, per_class: int = 8, seed: int = 0) -> Figure:
    """Returns a figure with ``per_class`` samples of every class, one row per class."""
    from workbench.generative.grid import class_rows, grid_figure

    if not 1 <= per_class <= 32:
        raise WorkbenchError(f"samples per class: must lie in [1, 32], got {per_class}")
    return grid_figure(class_rows(generator, per_class, seed), generator.classes)


def interpolation(generator, label: int, steps: int = 8, seed: int = 0) -> Figure:
    """Returns a figure of ``steps`` images of class ``label`` along a line in latent space.

    Raises:
        WorkbenchError: the model has no latent interpolation, or the label is unknown.
    """
    from workbench.generative.grid import grid_figure

    if not hasattr(generator, "interpolate"):
        raise WorkbenchError(
            f"a {kind_of(generator)} checkpoint offers no latent interpolation; load a VAE or GAN"
        )
    if not 2 <= steps <= 32:
        raise WorkbenchError(f"steps: must lie in [2, 32], got {steps}")
    images = generator.interpolate(label, steps, seed)
    return grid_figure(images[None], [generator.classes[label]])


def refine_image(refiner, rgb: np.ndarray) -> np.ndarray:
    """Refines one uint8 H x W x 3 image (resized to the refiner's side first if needed).

    Returns:
        uint8 S x S x 3, grey RGB for a grey refiner.
    """
    from PIL import Image

    from workbench.generative.refine_dataset import refine_rgb

    size = int(refiner.hparams["image_size"])
    if rgb.shape[:2] != (size, size):
        rgb = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
    return refine_rgb(refiner, np.array(rgb, np.uint8)[None])[0]  # a writable copy for torch
