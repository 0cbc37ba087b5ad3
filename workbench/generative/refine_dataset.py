"""A refined copy of a rendered dataset: new images, the same labels.

``workbench refine`` passes every RGB image of a rendered dataset through a trained
:class:`~workbench.generative.refiner.Refiner` (SimGAN) or a diffusion model used as SDEdit
(:class:`~workbench.generative.diffusion.SDEditRefiner`: noise to a chosen strength, denoise,
optionally conditioned on each sample's own label, shard ``k`` with noise seed
``SeedSequence([seed, k])``) and writes a dataset with the same layout (same
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
from workbench.generative.diffusion import ConditionalDiffusion, SDEditRefiner
from workbench.generative.sampling import SampleRecord, file_sha256
from workbench.rng import derived_seed

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


def refine_rgb(
    refiner: torch.nn.Module | SDEditRefiner,
    rgb: np.ndarray,
    labels: list[int] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Refines uint8 N x H x W x 3 images; returns uint8 N x H x W x 3 (grey RGB for a grey
    refiner). ``labels`` and ``seed`` are what an SDEdit refiner conditions on and draws its
    noise from."""
    images = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0
    if int(refiner.hparams["in_channels"]) == 1:
        images = (images * LUMINANCE[:, None, None]).sum(1, keepdim=True)
    with torch.no_grad():
        if isinstance(refiner, SDEditRefiner):
            label_tensor = None if labels is None else torch.tensor(labels)
            refined = refiner.refine(images, label_tensor, seed)
        else:
            refined = refiner.refine(images).clamp(0, 1)
    out = np.round(refined.permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def _labels(refiner, dataset: Dataset, samples: list[dict[str, Any]]) -> list[int] | None:
    """The samples' own labels when an SDEdit refiner conditions on them."""
    if not (isinstance(refiner, SDEditRefiner) and refiner.conditioned):
        return None
    labels = [s["meta"].get("label") for s in samples]
    if any(not isinstance(label, int) for label in labels):
        raise WorkbenchError(
            f"{dataset.root}: samples carry no class label to condition on; drop --conditioned"
        )
    return labels


def _refined_shard(
    refiner, dataset: Dataset, start: int, count: int, seed: int
) -> list[SampleRecord]:
    samples = [dataset[i] for i in range(start, start + count)]
    refined = refine_rgb(
        refiner, np.stack([s["rgb"] for s in samples]), _labels(refiner, dataset, samples), seed
    )
    return [
        SampleRecord(
            {"rgb": rgb, "depth": s["depth"], "seg": s["seg"], "inst": s["inst"]}, s["meta"]
        )
        for rgb, s in zip(refined, samples, strict=True)
    ]


def refine_dataset(
    refiner: torch.nn.Module | SDEditRefiner,
    data: str | Path,
    out: str | Path,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    seed: int = 0,
) -> Path:
    """Writes (or resumes writing) the refined copy of the rendered dataset ``data`` to ``out``.

    Args:
        refiner: a trained SimGAN refiner (``refine(images)``) or an SDEdit refiner, with
            ``hparams`` holding ``image_size`` and ``in_channels``.
        data: a finished rendered dataset whose images have the refiner's side.
        out: the new dataset folder.
        provenance: where the refiner came from (``checkpoint``, ``sha256``, settings).
        progress: show a progress bar.
        seed: seed of an SDEdit refiner's noise (shard ``k`` uses ``SeedSequence([seed, k])``).

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
                    "seed": seed,
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
                samples = _refined_shard(
                    refiner, dataset, record["start"], record["count"],
                    derived_seed(seed, record["index"]),
                )  # fmt: skip
                write_shard(out, record["index"], record["start"], samples)
                bar.update(record["count"])
        finish_manifest(out, manifest)
    return out


def refine_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    progress: bool = True,
    strength: float | None = None,
    conditioned: bool = False,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
) -> Path:
    """Loads a refiner or diffusion checkpoint and writes the refined copy of ``data`` to
    ``out``; a diffusion model refines by SDEdit at ``strength`` (the other options are its own;
    see :class:`~workbench.generative.diffusion.SDEditRefiner`).

    Raises:
        WorkbenchError: a checkpoint of another kind, a diffusion checkpoint without
            ``strength``, or diffusion options for a SimGAN refiner.
    """
    model = load_module(checkpoint, ["refiner", "diffusion"])
    provenance = {"checkpoint": str(Path(checkpoint).resolve()), "sha256": file_sha256(checkpoint)}
    diffusion_options = {"--conditioned": conditioned, "--steps": steps, "--guidance": guidance}
    if isinstance(model, ConditionalDiffusion):
        if strength is None:
            raise WorkbenchError(
                f"{checkpoint}: a diffusion model refines by SDEdit; give --strength in (0, 1] "
                "(0.3 keeps the layout, 0.6 changes more)"
            )
        refiner = SDEditRefiner(model, strength, conditioned, steps, guidance)
        provenance.update(kind="diffusion", **refiner.settings())
    else:
        given = [name for name, value in (("--strength", strength), *diffusion_options.items())
                 if value not in (None, False)]  # fmt: skip
        if given:
            raise WorkbenchError(
                f"{', '.join(given)}: options of a diffusion refiner; {checkpoint} is a SimGAN "
                "refiner"
            )
        refiner, provenance["kind"] = model, "refiner"
    return refine_dataset(refiner, data, out, provenance, progress, seed)
