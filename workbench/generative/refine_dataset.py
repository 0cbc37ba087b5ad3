"""A refined copy of a rendered dataset: new images, the same labels.

``workbench refine`` passes every RGB image of a rendered dataset through a trained
:class:`~workbench.generative.refiner.Refiner` and writes a dataset with the same layout (same
shard size, same indices): the refined ``rgb.png`` and, unchanged, every other file of each
sample (``depth.npy``, ``seg.png``, ``inst.png``, the JSON with the label). The manifest is the
source's plus a ``refined`` record (source folder, refiner checkpoint and its sha256), so
:func:`~workbench.data.reader.open_dataset` and the ``rendered`` source kind read it as they
read the original, and the labels stay valid because a refiner keeps the image geometry.

A grey refiner (one input channel, trained on harmonised data) sees the luminance of the
rendered image (0.299 R + 0.587 G + 0.114 B, as the DataModule makes it) and its output is
written as grey RGB. Images must already have the side the refiner was trained on.

Shards are written atomically and a run killed at any moment resumes where it stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from workbench.checkpoint import load_module
from workbench.data.reader import Dataset, open_dataset
from workbench.data.writer import (
    clear_partials,
    dataset_lock,
    finish_manifest,
    finished_shards,
    open_dataset_dir,
    write_shard,
)
from workbench.errors import WorkbenchError
from workbench.generative.sampling import SampleRecord, file_sha256

LUMINANCE = torch.tensor([0.299, 0.587, 0.114])
_IDENTITY = ("refined", "num_samples", "shard_size", "num_shards")


def check_fits(refiner: torch.nn.Module, dataset: Dataset) -> None:
    """Refuses a dataset whose images do not have the size the refiner was trained on.

    Raises:
        WorkbenchError: one line naming both sizes and what to do.
    """
    size, channels = int(refiner.hparams["image_size"]), int(refiner.hparams["in_channels"])
    if channels not in (1, 3):
        raise WorkbenchError(f"refiner: expected 1 or 3 input channels, got {channels}")
    height, width = dataset[0]["rgb"].shape[:2]
    if (height, width) != (size, size):
        raise WorkbenchError(
            f"{dataset.root}: images are {height} x {width} but the refiner was trained on "
            f"{size} x {size}; render at --resolution {size} or train a refiner at {height}"
        )


def refine_rgb(refiner: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Refines uint8 N x H x W x 3 images; returns uint8 N x H x W x 3 (grey RGB for a grey
    refiner)."""
    images = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0
    if int(refiner.hparams["in_channels"]) == 1:
        images = (images * LUMINANCE[:, None, None]).sum(1, keepdim=True)
    with torch.no_grad():
        refined = refiner.refine(images).clamp(0, 1)
    out = np.round(refined.permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def _refined_shard(refiner, dataset: Dataset, start: int, count: int) -> list[SampleRecord]:
    samples = [dataset[i] for i in range(start, start + count)]
    refined = refine_rgb(refiner, np.stack([s["rgb"] for s in samples]))
    return [
        SampleRecord(
            {"rgb": rgb, "depth": s["depth"], "seg": s["seg"], "inst": s["inst"]}, s["meta"]
        )
        for rgb, s in zip(refined, samples, strict=True)
    ]


def refine_dataset(
    refiner: torch.nn.Module,
    data: str | Path,
    out: str | Path,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Writes (or resumes writing) the refined copy of the rendered dataset ``data`` to ``out``.

    Args:
        refiner: a trained refiner (``refine(images)``, ``hparams`` with ``image_size`` and
            ``in_channels``), in eval mode.
        data: a finished rendered dataset whose images have the refiner's side.
        out: the new dataset folder.
        provenance: where the refiner came from (``checkpoint``, ``sha256``).
        progress: show a progress bar.

    Returns:
        ``out``.

    Raises:
        WorkbenchError: an unreadable or unfinished dataset, images of another size, or ``out``
            holding something else.
    """
    dataset = open_dataset(data)
    check_fits(refiner, dataset)
    out = Path(out)
    if out.resolve() == dataset.root.resolve():
        raise WorkbenchError(f"--out: {out} is the input dataset; choose another folder")
    source = dataset.manifest
    with dataset_lock(out):  # a second writer into this folder is refused
        manifest = open_dataset_dir(
            out,
            {
                **source,
                "name": f"{source.get('name', dataset.root.name)}_refined",
                "refined": {
                    "source": str(dataset.root.resolve()),
                    "source_shards": [r["sha256"] for r in source["shards"]],
                    "refiner": dict(provenance or {}),
                },
                "command": list(sys.argv),
                "complete": False,
                "shards": [],
            },
            _IDENTITY,
        )
        done = finished_shards(out)
        todo = [r for r in source["shards"] if r["index"] not in done]
        clear_partials(out, [r["index"] for r in todo])
        refiner.eval()
        with tqdm(
            total=sum(r["count"] for r in todo), unit="sample", desc="refine", disable=not progress
        ) as bar:
            for record in todo:
                samples = _refined_shard(refiner, dataset, record["start"], record["count"])
                write_shard(out, record["index"], record["start"], samples)
                bar.update(record["count"])
        finish_manifest(out, manifest)
    return out


def refine_checkpoint(
    checkpoint: str | Path, data: str | Path, out: str | Path, progress: bool = True
) -> Path:
    """Loads a refiner checkpoint and writes the refined copy of ``data`` to ``out``."""
    refiner = load_module(checkpoint, ["refiner"])
    provenance = {"checkpoint": str(Path(checkpoint).resolve()), "sha256": file_sha256(checkpoint)}
    return refine_dataset(refiner, data, out, provenance, progress)
