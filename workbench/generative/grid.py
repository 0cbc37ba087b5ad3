"""Image grids of generative models: one row per class (or per kind of image), names on the left.

One implementation serves the PNG files of ``workbench`` runs, TensorBoard and the app:
:func:`grid_figure` lays out the images, :func:`save_sample_grid` draws a generator's samples,
:func:`log_grid` writes a grid under a training run's log folder (:func:`run_dir`) and to
TensorBoard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger

from workbench.data.sources import ConditionalGenerator

PAD = 1  # pixels between tiles


def grid_figure(rows: np.ndarray, names: Sequence[str], title: str | None = None) -> Figure:
    """Returns a figure of ``rows`` (R x N x H x W x C floats in [0, 1]) with ``names[r]`` left
    of row ``r``."""
    count, per_row, height, width, channels = rows.shape
    mosaic = np.ones(
        (count * (height + PAD) - PAD, per_row * (width + PAD) - PAD, channels), np.float32
    )
    for r in range(count):
        for c in range(per_row):
            y, x = r * (height + PAD), c * (width + PAD)
            mosaic[y : y + height, x : x + width] = rows[r, c]
    fig = Figure(figsize=(0.8 + 0.45 * per_row, 0.3 + 0.45 * count + 0.3 * bool(title)))
    ax = fig.subplots()
    if channels == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(mosaic, 0, 1), interpolation="nearest")
    ax.set_yticks([r * (height + PAD) + (height - 1) / 2 for r in range(count)], list(names))
    ax.set_xticks([])
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _rgb(fig: Figure) -> np.ndarray:
    """Returns ``fig`` drawn as uint8 H x W x 3, the way TensorBoard's ``add_figure`` draws it."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def class_rows(generator: ConditionalGenerator, per_class: int, seed: int) -> np.ndarray:
    """Returns ``per_class`` samples of every class as K x per_class x H x W x C."""
    labels = np.repeat(np.arange(len(generator.classes)), per_class)
    images = generator.generate(labels.tolist(), seed)
    return images.reshape(len(generator.classes), per_class, *images.shape[1:])


def save_sample_grid(
    generator: ConditionalGenerator, path: Path, per_class: int = 8, seed: int = 0
) -> Path:
    """Writes a PNG with ``per_class`` samples of every class, one row per class.

    Args:
        generator: any class-conditional generator (VAE, GAN, ...).
        path: PNG file to write (folders are made).
        per_class: samples per row.
        seed: seed of the samples.

    Returns:
        ``path``.
    """
    fig = grid_figure(class_rows(generator, per_class, seed), generator.classes)
    return _save(fig, Path(path))


def run_dir(module: pl.LightningModule) -> Path | None:
    """Returns the log folder images of ``module`` go to: its first logger's, on the global-zero
    process only; None without a trainer or logger folder, on other ranks and in the sanity
    check (nothing is then written)."""
    trainer = module._trainer
    if trainer is None or not trainer.is_global_zero or trainer.sanity_checking:
        return None
    log_dir = getattr(trainer.loggers[0], "log_dir", None) if trainer.loggers else None
    return Path(log_dir) if log_dir else None


def log_grid(
    module: pl.LightningModule, folder: str, rows: np.ndarray, names: Sequence[str]
) -> Path | None:
    """Writes ``rows`` as ``<run_dir>/<folder>/epoch_NNN.png`` (see :func:`run_dir`) and adds it
    to TensorBoard as ``<folder>`` when a TensorBoard logger is attached.

    Returns:
        The PNG path, or None when nothing was written.
    """
    root = run_dir(module)
    if root is None:
        return None
    trainer = module.trainer
    epoch = trainer.current_epoch
    fig = grid_figure(rows, names, f"{folder}, epoch {epoch}")
    path = _save(fig, root / folder / f"epoch_{epoch:03d}.png")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(folder, _rgb(fig), trainer.global_step, dataformats="HWC")
    return path
