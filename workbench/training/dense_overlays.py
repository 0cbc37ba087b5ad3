"""Dense predictions drawn beside their ground truth: the figure and the per-epoch callback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from matplotlib.figure import Figure

SEG_CMAP = "tab20"  # id k is colour k (ids above 19 wrap), background 0 is blue
ERROR_RGB = np.array([1.0, 0.15, 0.1])


def overlay_figure(
    images: np.ndarray,
    seg_true: np.ndarray | None = None,
    seg_pred: np.ndarray | None = None,
    depth_true: np.ndarray | None = None,
    depth_pred: np.ndarray | None = None,
    row_titles: list[str] | None = None,
) -> Figure:
    """One row per sample: the image, then for segmentation the prediction, the ground truth and
    the wrong pixels in red on the dimmed image; for depth the prediction, the ground truth and
    the absolute error (metres, pixels without a label blank).

    Args:
        images: N x H x W x C in [0, 1] (C = 1 or 3).
        seg_true: N x H x W true class ids (negative = no label).
        seg_pred: N x H x W predicted class ids.
        depth_true: N x H x W true metres (0 = no label).
        depth_pred: N x H x W predicted metres.
        row_titles: a label per row (for example the condition).
    """
    columns = ["image"]
    if seg_pred is not None:
        columns += ["predicted classes", "true classes", "wrong pixels"]
    if depth_pred is not None:
        columns += ["predicted depth", "true depth", "|depth error|"]
    count = len(images)
    fig = Figure(figsize=(1.7 * len(columns), 1.8 * count + 0.3))
    axes = fig.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        image = images[row] if images.shape[-1] == 3 else images[row][..., 0]
        cells = [(image, {"cmap": "gray" if image.ndim == 2 else None, "vmin": 0, "vmax": 1})]
        if seg_pred is not None:
            seg_style = {"cmap": SEG_CMAP, "vmin": 0, "vmax": 19, "interpolation": "nearest"}
            truth = np.ma.masked_less(seg_true[row], 0)
            wrong = (seg_pred[row] != seg_true[row]) & (seg_true[row] >= 0)
            dimmed = 0.4 * (image if image.ndim == 3 else np.repeat(image[..., None], 3, 2))
            dimmed[wrong] = ERROR_RGB
            cells += [(seg_pred[row] % 20, seg_style), (truth % 20, seg_style), (dimmed, {})]
        if depth_pred is not None:
            valid = depth_true[row] > 0
            top = float(depth_true[row][valid].max()) if valid.any() else 1.0
            depth_style = {"cmap": "magma_r", "vmin": 0, "vmax": top}
            error = np.ma.masked_where(~valid, np.abs(depth_pred[row] - depth_true[row]))
            cells += [
                (depth_pred[row], depth_style),
                (np.ma.masked_where(~valid, depth_true[row]), depth_style),
                (error, {"cmap": "viridis"}),
            ]
        for col, (picture, style) in enumerate(cells):
            axes[row, col].imshow(picture, **style)
        if row_titles:
            axes[row, 0].set_ylabel(row_titles[row], fontsize=8)
    for col, name in enumerate(columns):
        axes[0, col].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


class DenseOverlays(pl.Callback):
    """After every validation epoch, draws the first validation samples that the module kept
    (``module.overlay_batch``) with :func:`overlay_figure`, saves the figure as
    ``<log dir>/overlays/epoch_NNN.png`` and adds it to TensorBoard."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        batch = getattr(module, "overlay_batch", None)
        module.overlay_batch = None
        if batch is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        images = batch["image"].permute(0, 2, 3, 1).float().numpy()
        fig = overlay_figure(
            images,
            seg_true=batch["seg"].numpy() if "pred_seg" in batch else None,
            seg_pred=batch["pred_seg"].argmax(1).numpy() if "pred_seg" in batch else None,
            depth_true=batch["depth"].numpy() if "pred_depth" in batch else None,
            depth_pred=batch["pred_depth"].float().numpy() if "pred_depth" in batch else None,
        )
        for logger in trainer.loggers:
            if logger.log_dir:
                folder = Path(logger.log_dir) / "overlays"
                folder.mkdir(parents=True, exist_ok=True)
                fig.savefig(folder / f"epoch_{trainer.current_epoch:03d}.png", dpi=90)
                break
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_figure"):
                logger.experiment.add_figure("val/overlays", fig, trainer.current_epoch)
