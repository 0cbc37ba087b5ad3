"""The images a robustness evaluation runs on, harmonised to the model's input.

``DATA`` is one of:

* ``digits``: the held-out test split of scikit-learn's natural handwritten digits;
* a rendered dataset folder (``manifest.json``);
* a folder of paired conditions written by ``workbench render --conditions`` (``conditions.json``):
  attacks and corruptions run on the ``clone`` condition (or the first one), and every
  condition is evaluated on the same scenes for the condition shift;
* an ImageFolder tree (one sub-folder of images per class).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from workbench.data.reader import PAIRS, open_paired
from workbench.data.sources import DigitsSource, ImageFolderSource, RenderedSource, Source
from workbench.data.transforms import harmonise
from workbench.data.writer import MANIFEST
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

REFERENCE_CONDITION = "clone"


@dataclass
class EvalData:
    """Evaluation images and labels.

    Attributes:
        x: float32 ``n x C x S x S`` in [0, 1].
        y: int64 ``n``.
        classes: class names of the data.
        source: what was loaded, in words.
        conditions: condition name -> images of the same samples under that condition
            (empty unless the data are paired conditions); ``reference`` is the one in ``x``.
        reference: the condition of ``x`` when ``conditions`` is not empty.
        depth: float32 ``n x S x S`` metres of ``x`` (0 = no surface) for rendered data with
            depth, else None (for the depth-aware corruptions).
    """

    x: Tensor
    y: Tensor
    classes: list[str]
    source: str
    conditions: dict[str, Tensor] = field(default_factory=dict)
    reference: str | None = None
    depth: Tensor | None = None


def _select(count: int, n: int | None, seed: int) -> np.ndarray:
    """Returns ``n`` sorted indices out of ``count`` drawn with ``seed`` (all when n is None)."""
    if n is None or n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:n])


def _stack(
    source: Source, indices: np.ndarray, size: int, channels: int
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Images, labels and (for rendered data with depth) depth of the chosen items."""
    items = [harmonise(source[int(i)], size, channels) for i in indices]
    if not items:
        return torch.zeros(0, channels, size, size), torch.zeros(0, dtype=torch.long), None
    depth = None
    if isinstance(source, RenderedSource) and source.dense:
        depth = torch.stack([i["depth"] for i in items]).float()
    images = torch.stack([i["image"] for i in items])
    return images, torch.stack([i["label"] for i in items]).long(), depth


def _single_source(data: str) -> tuple[Source, str]:
    if data == "digits":
        return DigitsSource("test", name="digits"), "natural digits, test split"
    path = Path(data)
    if (path / MANIFEST).is_file():
        return RenderedSource(path), f"rendered dataset {path}"
    if path.is_dir():
        return ImageFolderSource(path), f"ImageFolder {path}"
    raise WorkbenchError(
        f"--data: {data!r} is neither 'digits', a rendered dataset, a folder of paired "
        "conditions nor an ImageFolder tree"
    )


def load_eval_data(
    data: str, image_size: int, channels: int, n: int | None = None, seed: int = 0
) -> EvalData:
    """Loads up to ``n`` examples of ``data`` (a seeded, sorted subset), harmonised.

    Args:
        data: ``digits``, a rendered dataset, a paired-conditions folder or an ImageFolder tree.
        image_size: the model's input size in pixels (images are resized to it).
        channels: the model's input channels (images are converted to them).
        n: number of examples, or None for all.
        seed: seed of the subset.

    Raises:
        WorkbenchError: an unknown or empty ``data``.
    """
    path = Path(data)
    if data != "digits" and (path / PAIRS).is_file() and not (path / MANIFEST).is_file():
        sets = open_paired(path, modalities=())
        names = list(sets)
        reference = REFERENCE_CONDITION if REFERENCE_CONDITION in sets else names[0]
        sources = {name: RenderedSource(path / name) for name in names}
        count = min(len(s) for s in sources.values())
        indices = _select(count, n, seed)
        conditions, labels, depths = {}, None, {}
        for name, source in sources.items():
            images, y, depths[name] = _stack(source, indices, image_size, channels)
            if labels is not None and not torch.equal(labels, y):
                raise WorkbenchError(
                    f"--data: condition {name!r} of {path} has other labels than "
                    f"{names[0]!r}; the sets are not paired renders of the same scenes"
                )
            conditions[name], labels = images, y
        return EvalData(
            conditions[reference],
            labels,
            list(sources[reference].classes),
            f"paired conditions {path} ({', '.join(names)})",
            conditions,
            reference,
            depths[reference],
        )
    source, description = _single_source(data)
    indices = _select(len(source), n, seed)
    if not len(indices):
        raise WorkbenchError(f"--data: {data} holds no labelled examples")
    x, y, depth = _stack(source, indices, image_size, channels)
    log.info("loaded %d examples of %s", len(x), description)
    return EvalData(x, y, list(source.classes), description, depth=depth)
