"""The rendered images and dense labels a dense robustness evaluation runs on, harmonised to the
model's input.

``DATA`` is a rendered dataset folder or a folder of paired conditions (``workbench render
--conditions``): attacks and corruptions run on the ``clone`` condition (or the first one), and
every condition is scored on its own labels (a camera turn changes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from workbench.data.reader import PAIRS, open_paired
from workbench.data.sources import RenderedSource
from workbench.data.transforms import harmonise
from workbench.data.writer import MANIFEST
from workbench.errors import WorkbenchError
from workbench.evaluation.data import REFERENCE_CONDITION

NEEDS_RENDERED = (
    "a dense checkpoint is evaluated on rendered data (a workbench render folder or a folder "
    "of paired conditions)"
)


@dataclass
class DenseSet:
    """Images and their dense labels.

    Attributes:
        x: float32 ``n x 3 x S x S`` in [0, 1].
        seg: int64 ``n x S x S`` class ids (0 = background, -1 = no label).
        depth: float32 ``n x S x S`` metres (0 = no label).
    """

    x: Tensor
    seg: Tensor
    depth: Tensor

    def tensors(self) -> list[Tensor]:
        """The three tensors (for fingerprints)."""
        return [self.x, self.seg, self.depth]


@dataclass
class DenseData:
    """The evaluation set and, for paired conditions, the same scenes under each condition.

    Attributes:
        reference: the set attacks and corruptions run on.
        classes: the data's class names.
        source: what was loaded, in words.
        conditions: condition name -> its set (empty unless paired).
        reference_condition: the condition of ``reference`` when paired.
    """

    reference: DenseSet
    classes: list[str]
    source: str
    conditions: dict[str, DenseSet] = field(default_factory=dict)
    reference_condition: str | None = None


def _stack(source: RenderedSource, indices: np.ndarray, size: int) -> DenseSet:
    items = [harmonise(source[int(i)], size, 3) for i in indices]
    return DenseSet(
        torch.stack([i["image"] for i in items]),
        torch.stack([i["seg"] for i in items]).long(),
        torch.stack([i["depth"] for i in items]).float(),
    )


def _open(path: Path, what: str) -> RenderedSource:
    source = RenderedSource(path)
    if not source.dense:
        raise WorkbenchError(
            f"--data: {what} has no segmentation or depth labels (its manifest says "
            f"dense_labels: false); {NEEDS_RENDERED}"
        )
    return source


def load_dense_data(
    data: str, image_size: int, n: int | None = None, seed: int = 0, needs: tuple[str, ...] = ()
) -> DenseData:
    """Loads up to ``n`` samples of ``data`` (a seeded, sorted subset), harmonised to RGB.

    Args:
        data: a rendered dataset or a paired-conditions folder.
        image_size: the model's input size in pixels.
        n: number of samples, or None for all.
        seed: seed of the subset.
        needs: the labels the model needs (``seg``, ``depth``): a set without any is refused.

    Raises:
        WorkbenchError: data that is not rendered, has no dense labels, lacks a needed label
            everywhere, or is empty.
    """
    path = Path(data)
    if (path / MANIFEST).is_file():
        sources = {None: _open(path, str(path))}
        description = f"rendered dataset {path}"
    elif path.is_dir() and (path / PAIRS).is_file():
        names = list(open_paired(path, modalities=()))
        sources = {name: _open(path / name, f"{path / name}") for name in names}
        description = f"paired conditions {path} ({', '.join(names)})"
    else:
        raise WorkbenchError(f"--data: {data!r} is not rendered data; {NEEDS_RENDERED}")
    count = min(len(s) for s in sources.values())
    if count == 0:
        raise WorkbenchError(f"--data: {data} holds no samples")
    indices = np.arange(count)
    if n is not None and n < count:
        indices = np.sort(np.random.default_rng(seed).permutation(count)[:n])
    sets = {name: _stack(source, indices, image_size) for name, source in sources.items()}
    reference_name = REFERENCE_CONDITION if REFERENCE_CONDITION in sets else next(iter(sets))
    reference = sets[reference_name]
    missing = [
        {"seg": "segmentation", "depth": "depth"}[k]
        for k in needs
        if not (reference.seg >= 0 if k == "seg" else reference.depth > 0).any()
    ]
    if missing:
        raise WorkbenchError(
            f"--data: {data} has no {' and no '.join(missing)} labels, which this dense "
            "checkpoint predicts; render data with them"
        )
    first = next(iter(sources.values()))
    paired = {k: v for k, v in sets.items() if k is not None}
    return DenseData(
        reference, list(first.classes), description, paired, reference_name if paired else None
    )
