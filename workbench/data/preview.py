"""Contact sheets of datasets: every modality of a few samples in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from workbench.data.reader import Dataset


def _boxes(ax, meta: dict) -> None:
    for obj in meta["objects"]:
        if obj["box"]:
            x0, y0, x1, y1 = obj["box"]
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="yellow", lw=0.8
                )
            )


def contact_sheet(dataset: Dataset, path: str | Path, count: int = 6) -> Path:
    """Writes a grid with one row per modality (RGB with boxes, depth, semantic, instance).

    Args:
        dataset: an opened dataset with all modalities.
        path: PNG file to write.
        count: number of samples (columns).
    """
    count = min(count, len(dataset))
    fig = Figure(figsize=(1.8 * count, 7.4))
    axes = fig.subplots(4, count, squeeze=False)
    for col in range(count):
        sample = dataset[col]
        meta = sample["meta"]
        axes[0, col].imshow(sample["rgb"])
        _boxes(axes[0, col], meta)
        axes[0, col].set_title(f"{meta['label_name']}  d={meta['difficulty']:.2f}", fontsize=8)
        depth = np.ma.masked_equal(sample["depth"], 0)
        axes[1, col].imshow(depth, cmap="magma_r")
        axes[2, col].imshow(sample["seg"], cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        axes[3, col].imshow(
            sample["inst"] % 20, cmap="tab20", vmin=0, vmax=19, interpolation="nearest"
        )
    for row, name in enumerate(["rgb + boxes", "depth", "semantic", "instance"]):
        axes[row, 0].set_ylabel(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"{dataset.manifest['name']} ({dataset.condition}), {len(dataset)} samples", fontsize=9
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def condition_grid(sets: dict[str, Dataset], path: str | Path, count: int = 5) -> Path:
    """Writes paired renders side by side: one row per condition, same scenes in each column."""
    names = list(sets)
    count = min(count, *(len(d) for d in sets.values()))
    fig = Figure(figsize=(1.8 * count, 1.9 * len(names)))
    axes = fig.subplots(len(names), count, squeeze=False)
    for row, name in enumerate(names):
        for col in range(count):
            axes[row, col].imshow(sets[name][col]["rgb"])
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
