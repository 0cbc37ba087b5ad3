"""Generative augmenters in the app: load a VAE, GAN, diffusion or refiner checkpoint under the
data root, sample per class, walk the latent space or the denoising path, refine a rendered
image (SimGAN, or SDEdit with a diffusion model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from workbench.errors import WorkbenchError
from workbench.inspect.paths import resolve_under

KINDS = ("vae", "gan", "diffusion", "refiner")


def load_augmenter(root: str | Path, checkpoint: str) -> torch.nn.Module:
    """Loads a VAE, GAN, diffusion or refiner checkpoint that lies under ``root``, in eval mode.

    Raises:
        WorkbenchError: the path leaves the root, or the file is unreadable or of another kind.
    """
    from workbench.checkpoint import load_module

    return load_module(resolve_under(root, checkpoint), KINDS)


def kind_of(module: torch.nn.Module) -> str:
    """Returns ``vae``, ``gan``, ``diffusion`` or ``refiner`` for a loaded augmenter."""
    from workbench.generative.sampling import module_kind

    return module_kind(module)


def sample_grid(
    generator,
    per_class: int = 8,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
) -> Figure:
    """Returns a figure with ``per_class`` samples of every class, one row per class; a
    diffusion model samples with ``steps`` DDIM steps and guidance scale ``guidance`` (its own
    settings when None).

    Raises:
        WorkbenchError: a bad count, or sampling options for a VAE or GAN, or bad ones.
    """
    from workbench.generative.grid import grid_figure

    if not 1 <= per_class <= 32:
        raise WorkbenchError(f"samples per class: must lie in [1, 32], got {per_class}")
    options = {"steps": steps, "guidance": guidance}
    if kind_of(generator) != "diffusion":
        if steps is not None or guidance is not None:
            raise WorkbenchError("DDIM steps and guidance apply to diffusion models only")
        options = {}
    labels = np.repeat(np.arange(len(generator.classes)), per_class).tolist()
    images = generator.generate(labels, seed, **options)
    rows = images.reshape(len(generator.classes), per_class, *images.shape[1:])
    return grid_figure(rows, generator.classes)


def denoising(model, seed: int = 0) -> Figure:
    """Returns a diffusion model's sampling path, one row per class: x_t from noise to the
    sample."""
    from workbench.generative.grid import grid_figure

    return grid_figure(model.denoising_strip(seed), model.classes, "noise -> sample")


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


def refine_image(
    refiner, rgb: np.ndarray, strength: float | None = None, seed: int = 0
) -> np.ndarray:
    """Refines one uint8 H x W x 3 image (resized to the refiner's side first if needed); a
    diffusion model refines by SDEdit at ``strength`` (unconditionally) with noise ``seed``.

    Returns:
        uint8 S x S x 3, grey RGB for a grey refiner.

    Raises:
        WorkbenchError: a diffusion model without a strength in (0, 1].
    """
    from PIL import Image

    from workbench.generative.refine_dataset import refine_rgb

    if kind_of(refiner) == "diffusion":
        from workbench.generative.diffusion import SDEditRefiner

        if strength is None:
            raise WorkbenchError("strength: a diffusion model refines by SDEdit; choose one")
        refiner = SDEditRefiner(refiner, strength)
    size = int(refiner.hparams["image_size"])
    if rgb.shape[:2] != (size, size):
        rgb = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
    # a writable copy for torch
    return refine_rgb(refiner, np.array(rgb, np.uint8)[None], seed=seed)[0]
