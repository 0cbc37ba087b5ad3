"""Writing class-conditional samples of a generator as a dataset in the standard contract.

``workbench sample`` writes ``num`` samples of a VAE, GAN or diffusion checkpoint as a dataset that
:func:`workbench.data.reader.open_dataset` reads like a rendered one: sample ``i`` has label
``classes[i % len(classes)]`` (balanced over the chosen classes), the label ids are the
generator's own (so the dataset mixes with any source of the same classes), and its JSON holds
``label``, ``label_name``, the generator's kind and the seed of its shard.

Generated images carry no dense labels: ``depth``, ``seg`` and ``inst`` are written as zeros
(what the format means by "no surface" and "background") and the manifest says
``"dense_labels": false``; the ``generated`` source kind reads such a folder without them.

Shards are written atomically (see :mod:`workbench.data.writer`); shard ``k`` is generated in one
call with seed ``SeedSequence([seed, k])``, so a run killed at any moment and run again writes
the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from workbench import __version__
from workbench.checkpoint import KINDS, load_module
from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES, decode_file
from workbench.data.reader import open_dataset
from workbench.data.sources import ConditionalGenerator
from workbench.data.writer import (
    clear_partials,
    dataset_lock,
    finish_manifest,
    finished_shards,
    open_dataset_dir,
    shard_dir,
    write_shard,
)
from workbench.errors import WorkbenchError
from workbench.rng import derived_seed

CONDITION = "generated"
GENERATOR_KINDS = ("vae", "gan", "diffusion")  # checkpoint kinds that sample by class
_IDENTITY = ("kind", "generator", "seed", "num_samples", "shard_size", "sampled_classes")


@dataclass
class SampleRecord:
    """One sample (arrays and JSON) as :func:`~workbench.data.writer.write_shard` takes it."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | Path) -> str:
    """Returns the sha256 of a file (for provenance in manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def module_kind(module: object) -> str:
    """Returns the checkpoint kind (a key of ``KINDS``) of a workbench module, else its class."""
    path = f"{type(module).__module__}.{type(module).__qualname__}"
    return next((kind for kind, cls in KINDS.items() if cls == path), type(module).__name__)


def class_indices(classes: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    """Returns the indices of ``wanted`` class names (all classes when None).

    Raises:
        WorkbenchError: a name the generator was not trained on, naming the known ones.
    """
    if wanted is None:
        return list(range(len(classes)))
    out = []
    for name in wanted:
        if name not in classes:
            raise WorkbenchError(
                f"--classes: {name!r} is not a class the generator was trained on; "
                f"known: {', '.join(classes)}"
            )
        out.append(list(classes).index(name))
    if not out:
        raise WorkbenchError("--classes: name at least one class")
    return list(dict.fromkeys(out))


def shard_seed(seed: int, shard: int) -> int:
    """Returns the generator seed of shard ``shard`` of a dataset with seed ``seed``."""
    return derived_seed(seed, shard)


def to_rgb8(images: np.ndarray) -> np.ndarray:
    """Turns float N x H x W x C (C = 1 or 3) images in [0, 1] into uint8 N x H x W x 3."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected N x H x W x 1 or 3 images, got shape {images.shape}")
    if not np.isfinite(images).all():
        raise WorkbenchError("the generator produced non-finite pixels; check the checkpoint")
    rgb = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb


def _samples(
    generator: ConditionalGenerator, kind: str, seed: int, start: int, labels: list[int]
) -> list[SampleRecord]:
    images = to_rgb8(np.asarray(generator.generate(labels, seed)))
    size = images.shape[1:3]
    empty = {
        "depth": np.zeros(size, np.float32),
        "seg": np.zeros(size, np.uint8),
        "inst": np.zeros(size, np.uint16),
    }
    return [
        SampleRecord(
            {"rgb": image, **empty},
            {
                "index": start + offset,
                "label": label,
                "label_name": generator.classes[label],
                "generator": kind,
                "seed": seed,
            },
        )
        for offset, (image, label) in enumerate(zip(images, labels, strict=True))
    ]


def write_samples(
    generator: ConditionalGenerator,
    out: str | Path,
    num: int,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    provenance: dict[str, Any] | None = None,
    shard_size: int = 256,
    progress: bool = True,
) -> Path:
    """Writes (or resumes writing) ``num`` generated samples as a dataset in ``out``.

    Args:
        generator: a class-conditional generator (``classes``, ``generate(labels, seed)``).
        out: dataset folder.
        num: number of samples.
        seed: dataset seed.
        classes: names of the classes to sample (default: all), in turn.
        provenance: where the generator came from (``kind``, ``checkpoint``, ``sha256``).
        shard_size: samples per shard (and per ``generate`` call).
        progress: show a progress bar.

    Returns:
        ``out``.

    Raises:
        WorkbenchError: a bad count, an unknown class, or ``out`` holding something else.
    """
    if num < 1:
        raise WorkbenchError(f"--num: must be a positive number of samples, got {num}")
    if shard_size < 1:
        raise WorkbenchError(f"--shard-size: must be at least 1, got {shard_size}")
    out = Path(out)
    chosen = class_indices(generator.classes, classes)
    provenance = {"kind": module_kind(generator), **(provenance or {})}
    kind = provenance["kind"]
    num_shards = -(-num // shard_size)
    with dataset_lock(out):  # a second writer into this folder is refused
        manifest = open_dataset_dir(
            out,
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "kind": "generated",
                "name": f"{kind}_samples",
                "generator": provenance,
                "seed": seed,
                "num_samples": num,
                "shard_size": shard_size,
                "num_shards": num_shards,
                "condition": CONDITION,
                "resolution": None,
                "classes": {str(i): c for i, c in enumerate(generator.classes)},
                "sampled_classes": [generator.classes[i] for i in chosen],
                "modalities": MODALITIES,
                "dense_labels": False,
                "versions": {"workbench": __version__},
                "command": list(sys.argv),
                "complete": False,
                "shards": [],
            },
            _IDENTITY,
        )
        done = finished_shards(out)
        todo = [k for k in range(num_shards) if k not in done]
        clear_partials(out, todo)
        total = sum(min(shard_size, num - k * shard_size) for k in todo)
        with tqdm(total=total, unit="sample", desc=f"sample {kind}", disable=not progress) as bar:
            for shard in todo:
                start = shard * shard_size
                labels = [
                    chosen[i % len(chosen)] for i in range(start, min(start + shard_size, num))
                ]
                samples = _samples(generator, kind, shard_seed(seed, shard), start, labels)
                write_shard(out, shard, start, samples)
                bar.update(len(samples))
        if manifest["resolution"] is None:
            first = decode_file("rgb.png", (shard_dir(out, 0) / "000000.rgb.png").read_bytes())
            manifest["resolution"] = int(first.shape[0])
        finish_manifest(out, manifest)
    return out


def load_generator(
    checkpoint: str | Path, steps: int | None = None, guidance: float | None = None
) -> ConditionalGenerator:
    """Loads a VAE, GAN or diffusion checkpoint; a diffusion model samples with ``steps`` DDIM
    steps and guidance scale ``guidance`` (default: its own settings).

    Raises:
        WorkbenchError: another kind of checkpoint, bad diffusion options, or diffusion options
            for a VAE or GAN.
    """
    generator = load_module(checkpoint, GENERATOR_KINDS)
    if module_kind(generator) == "diffusion":
        generator.use_sampling(steps, guidance)
    elif steps is not None or guidance is not None:
        raise WorkbenchError(
            f"--steps / --guidance: options of a diffusion model; {checkpoint} is a "
            f"{module_kind(generator).upper()}"
        )
    return generator


def sample_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    num: int,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    shard_size: int = 256,
    progress: bool = True,
    steps: int | None = None,
    guidance: float | None = None,
):
    """Loads a VAE, GAN or diffusion checkpoint (see :func:`load_generator`) and writes ``num``
    of its samples to ``out``.

    Returns:
        the written dataset, opened.
    """
    generator = load_generator(checkpoint, steps, guidance)
    provenance = {
        "kind": module_kind(generator),
        "checkpoint": str(Path(checkpoint).resolve()),
        "sha256": file_sha256(checkpoint),
    }
    if provenance["kind"] == "diffusion":
        provenance.update(generator.sampling())
    write_samples(generator, out, num, seed, classes, provenance, shard_size, progress)
    return open_dataset(out, modalities=("rgb",))
