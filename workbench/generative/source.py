"""The ``generated`` source kind: a generator's class-conditional samples in a data mix.

In a DataModule config::

    - {kind: generated, path: runs/vae/last.ckpt, num: 2000, name: vae}   # on the fly
    - {kind: generated, path: samples/vae, name: vae}                    # written once

A checkpoint (VAE, GAN or diffusion model, loaded with ``weights_only=True``) is sampled on
the fly by :class:`~workbench.data.sources.GeneratedSource`: ``num`` items, balanced over the
classes, deterministic. A folder written by ``workbench sample`` is read as it is (``num``, if
given, keeps its first ``num`` items). Either way the items carry no dense labels (``seg`` and
``depth`` are None, so dense heads skip them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.checkpoint import load_module
from workbench.data.reader import open_dataset
from workbench.data.sources import (
    GeneratedSource,
    Source,
    SourceSpec,
    by_role,
    need_path,
    register_source,
)
from workbench.errors import WorkbenchError
from workbench.generative.sampling import GENERATOR_KINDS


class SampledSource:
    """A dataset folder written by ``workbench sample``, read without dense labels.

    Args:
        path: the dataset folder.
        name: tag of the source (default: the folder name).
        num: keep only the first ``num`` items (default: all).
    """

    def __init__(self, path: str | Path, name: str | None = None, num: int | None = None):
        self.dataset = open_dataset(path, modalities=("rgb",))
        self.classes = list(self.dataset.classes)
        self.name = name or Path(path).name
        count = len(self.dataset)
        if num is not None and not 1 <= num <= count:
            raise WorkbenchError(
                f"data.sources: num of the generated source {path} must lie in [1, {count}] "
                f"(the samples written there), got {num}"
            )
        self.num = count if num is None else num
        self._labels = np.array(self.dataset.labels()[: self.num], np.int64)

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num:
            raise IndexError(f"item {index} out of range [0, {self.num})")
        sample = self.dataset[index]
        return {
            "image": sample["rgb"].astype(np.float32) / 255.0,
            "label": int(sample["meta"]["label"]),
            "seg": None,
            "depth": None,
        }

    def labels(self) -> np.ndarray:
        """Returns all labels (from the sample JSON files only)."""
        return self._labels


@register_source("generated")
def build_generated(spec: SourceSpec) -> dict[str, Source]:
    """Builds a generated source from a VAE, GAN or diffusion checkpoint (needs ``num``) or a
    sampled folder."""
    path = Path(need_path(spec))
    if path.is_dir():
        return by_role(spec, SampledSource(path, spec.name, spec.num))
    if spec.num is None:
        raise WorkbenchError(
            f"data.sources: the generated source {path} needs num (how many samples to draw)"
        )
    generator = load_module(path, GENERATOR_KINDS)
    return by_role(spec, GeneratedSource(generator, spec.num, name=spec.name or "generated"))
