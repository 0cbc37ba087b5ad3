"""Labelled data sources: natural digits, ImageFolder trees, rendered datasets, generators.

A source is a sequence of items::

    image   float32 H x W x C in [0, 1] (native size and channels)
    label   int, index into ``classes``
    seg     int64 H x W semantic map (class index + 1, 0 = background), or None
    depth   float32 H x W metres (0 = unknown), or None

The DataModule harmonises sizes and channels; see :mod:`workbench.data.datamodule`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.imageio import PNG_JPEG, read_image
from workbench.registry import Registry

logger = logging.getLogger(__name__)

# ImageFolder files: listed by these suffixes, then decoded only if their content is PNG or JPEG.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DIGIT_CLASSES = [str(d) for d in range(10)]
# The fixed split of scikit-learn's 1,797 handwritten digits: a stratified permutation with this
# seed; the first 20% of every class is the test split, the next 10% validation, the rest train.
DIGITS_SPLIT_SEED = 20240917
DIGITS_TEST_FRACTION = 0.2
DIGITS_VAL_FRACTION = 0.1


class Source(Protocol):
    """What the DataModule needs from a source."""

    name: str
    classes: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


def source_labels(source: Source) -> np.ndarray:
    """All labels of a source (its ``labels()`` when it has one, else item by item)."""
    if hasattr(source, "labels"):
        return np.asarray(source.labels(), np.int64)
    return np.array([source[i]["label"] for i in range(len(source))], np.int64)


def content_hash(image: np.ndarray) -> str:
    """Returns a hash of an image's pixels (quantised to 8 bits), used to detect split leaks."""
    quantised = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if quantised.ndim == 3 and quantised.shape[-1] == 3 and (quantised == quantised[..., :1]).all():
        quantised = quantised[..., :1]  # grey stored as RGB is the same picture as grey
    return hashlib.sha1(quantised.tobytes() + str(quantised.shape).encode()).hexdigest()


def digits_split_indices() -> dict[str, np.ndarray]:
    """Returns the fixed train / val / test indices into ``sklearn.datasets.load_digits``.

    Stratified: for every class, a permutation with :data:`DIGITS_SPLIT_SEED`; the first 20% go
    to test, the next 10% to validation, the rest to train.
    """
    from sklearn.datasets import load_digits

    target = load_digits().target
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in range(10):
        members = rng.permutation(np.flatnonzero(target == label))
        n_test = round(DIGITS_TEST_FRACTION * len(members))
        n_val = round(DIGITS_VAL_FRACTION * len(members))
        parts["test"] += members[:n_test].tolist()
        parts["val"] += members[n_test : n_test + n_val].tolist()
        parts["train"] += members[n_test + n_val :].tolist()
    return {k: np.sort(np.array(v)) for k, v in parts.items()}


class DigitsSource:
    """The real handwritten 8x8 digits bundled with scikit-learn (ink bright on dark).

    Args:
        split: ``train``, ``val``, ``test`` or ``trainval`` (train + val).
        per_class: keep only the first ``per_class`` items of every class (few-label studies).
    """

    def __init__(self, split: str = "train", per_class: int | None = None, name: str = "digits"):
        from sklearn.datasets import load_digits

        parts = digits_split_indices()
        if split == "trainval":
            indices = np.sort(np.concatenate([parts["train"], parts["val"]]))
        elif split in parts:
            indices = parts[split]
        else:
            raise WorkbenchError(
                f"digits split: unknown {split!r}; allowed: train, val, test, trainval"
            )
        data = load_digits()
        if per_class is not None:
            indices = np.concatenate(
                [indices[data.target[indices] == c][:per_class] for c in range(10)]
            )
        self.name = name
        self.split = split
        self.classes = list(DIGIT_CLASSES)
        self._images = (data.images[indices] / 16.0).astype(np.float32)[..., None]
        self._labels = data.target[indices].astype(np.int64)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "image": self._images[index],
            "label": int(self._labels[index]),
            "seg": None,
            "depth": None,
        }

    def labels(self) -> np.ndarray:
        """Returns all labels without loading images."""
        return self._labels


class ImageFolderSource:
    """Any folder tree with one sub-folder of PNG or JPEG images per class (class names =
    folder names); files are decoded by :mod:`workbench.imageio` (content must be PNG or JPEG,
    pixel and byte limits, full decode).

    Args:
        root: the tree's root.
        corrupt: ``error`` to stop at the first unreadable image (named), ``skip`` to decode
            every image once up front, leave the unreadable ones out and list them in
            ``skipped``.
    """

    def __init__(self, root: str | Path, corrupt: str = "error", name: str | None = None):
        self.root = Path(root)
        if corrupt not in ("error", "skip"):
            raise WorkbenchError(f"corrupt: unknown policy {corrupt!r}; allowed: error, skip")
        if not self.root.is_dir():
            raise WorkbenchError(f"{self.root}: ImageFolder root not found")
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        self.classes = [p.name for p in folders]
        self.name = name or self.root.name
        self._items = [
            (path, label)
            for label, folder in enumerate(folders)
            for path in sorted(folder.rglob("*"))
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self._items:
            raise WorkbenchError(
                f"{self.root}: empty ImageFolder "
                "(expected one sub-folder of PNG or JPEG images per class)"
            )
        self.corrupt = corrupt
        self.skipped: list[str] = []
        if corrupt == "skip":
            kept = []
            for path, label in self._items:
                try:
                    read_image(path, PNG_JPEG)
                    kept.append((path, label))
                except WorkbenchError as exc:
                    logger.warning("skipped %s", exc)
                    self.skipped.append(str(path))
            self._items = kept

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self._items[index]
        try:
            image = read_image(path, PNG_JPEG)
        except WorkbenchError as exc:
            raise WorkbenchError(f"{exc}; set corrupt: skip to leave such files out") from None
        array = np.asarray(image.convert("RGB"), np.float32) / 255.0
        return {"image": array, "label": label, "seg": None, "depth": None}

    def labels(self) -> np.ndarray:
        """Returns all labels without loading images."""
        return np.array([label for _, label in self._items], np.int64)


class UnlabelledFolderSource:
    """A folder of PNG or JPEG images with no class folders (items have label -1), for
    pseudo-labelling; files are listed recursively in sorted order and decoded by
    :mod:`workbench.imageio`.

    Raises:
        WorkbenchError: a missing folder or one without images.
    """

    def __init__(self, root: str | Path, name: str | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise WorkbenchError(f"{self.root}: folder of unlabelled images not found")
        self._paths = sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not self._paths:
            raise WorkbenchError(f"{self.root}: no PNG or JPEG images in this folder")
        self.name = name or self.root.name
        self.classes: list[str] = []

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = read_image(self._paths[index], PNG_JPEG)
        array = np.asarray(image.convert("RGB"), np.float32) / 255.0
        return {"image": array, "label": -1, "seg": None, "depth": None}

    def labels(self) -> np.ndarray:
        """Returns -1 for every item (no labels)."""
        return np.full(len(self._paths), -1, np.int64)

    def origin(self, index: int) -> str:
        """The file of item ``index``, relative to the folder."""
        return str(self._paths[index].relative_to(self.root))


def open_unlabelled(data: str) -> Source:
    """The items to pseudo-label: ``digits`` (the natural training split), a dataset folder
    (rendered, sampled or pseudo-labelled), an ImageFolder tree (labels are kept only to score
    the pseudo-labels) or a folder of images without class folders.

    Raises:
        WorkbenchError: a missing folder or one without images.
    """
    if data == "digits":
        return DigitsSource("train")
    path = Path(data)
    if (path / "manifest.json").is_file():
        return RenderedSource(path)
    if path.is_dir() and any(p.is_dir() for p in path.iterdir()):
        return ImageFolderSource(path)
    return UnlabelledFolderSource(path)


class RenderedSource:
    """A dataset written by ``workbench render``, with its segmentation and depth as dense labels
    (none for datasets whose manifest says ``"dense_labels": false``, such as sampled ones)."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.dataset = open_dataset(path, modalities=("rgb", "seg", "depth"))
        self.dense = self.dataset.manifest.get("dense_labels", True)
        self.classes = list(self.dataset.classes)
        self.name = name or Path(path).name
        self._labels = np.array(self.dataset.labels(), np.int64)
        if (self._labels < 0).any():
            keep = np.flatnonzero(self._labels >= 0)
            self._index = keep
        else:
            self._index = np.arange(len(self._labels))

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset[int(self._index[index])]
        return {
            "image": sample["rgb"].astype(np.float32) / 255.0,
            "label": int(sample["meta"]["label"]),
            "seg": sample["seg"].astype(np.int64) if self.dense else None,
            "depth": sample["depth"] if self.dense else None,
        }

    def labels(self) -> np.ndarray:
        """Returns all labels (from the sample JSON files only)."""
        return self._labels[self._index]

    def difficulties(self) -> np.ndarray:
        """Returns every item's rendered difficulty in [0, 1] (from the sample JSON files only;
        NaN where a sample has none)."""
        return np.array(
            [self.dataset.meta(int(i)).get("difficulty", np.nan) for i in self._index], np.float64
        )


@runtime_checkable
class ConditionalGenerator(Protocol):
    """A class-conditional image generator (implemented by the generative augmenters)."""

    classes: list[str]

    def generate(self, labels: Sequence[int], seed: int) -> np.ndarray:
        """Returns images float32 N x H x W x C in [0, 1] for the given labels, deterministic in
        ``seed``."""
        ...


class GeneratedSource:
    """Class-conditional samples from a generator, drawn once per index (deterministic).

    Item ``i`` has label ``i % len(classes)`` (balanced). Items are generated in blocks of
    ``block``; the block starting at ``b`` uses seed ``seed * 1_000_003 + b`` (the latest block
    is cached).
    """

    def __init__(
        self,
        generator: ConditionalGenerator,
        num: int,
        seed: int = 0,
        name: str = "generated",
        block: int = 256,
    ):
        if num < 1:
            raise WorkbenchError(f"generated source: num must be positive, got {num}")
        self.generator = generator
        self.classes = list(generator.classes)
        self.name = name
        self.num, self.seed, self.block = num, seed, block
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.num

    def _block(self, start: int) -> np.ndarray:
        if start not in self._cache:
            stop = min(start + self.block, self.num)
            labels = [i % len(self.classes) for i in range(start, stop)]
            self._cache = {start: self.generator.generate(labels, self.seed * 1_000_003 + start)}
        return self._cache[start]

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = index - index % self.block
        image = self._block(start)[index - start]
        return {
            "image": image.astype(np.float32),
            "label": index % len(self.classes),
            "seg": None,
            "depth": None,
        }

    def labels(self) -> np.ndarray:
        """Returns all labels."""
        return np.arange(self.num) % len(self.classes)


@dataclass
class SourceSpec:
    """One source of a mix, as written in a config.

    Attributes:
        kind: ``digits``, ``imagefolder``, ``rendered``, ``pseudo`` (written by ``workbench
            pseudo-label``), ``generated`` (see :mod:`workbench.generative.source`) or a kind
            registered by another part.
        path: folder (ImageFolder tree, rendered or sampled dataset) or checkpoint (generators).
        name: tag carried into every batch and used in metric names (default: the kind).
        weights: per split; ``train`` is the source's share of training draws, 0 leaves the
            source out of that split (evaluation splits are never subsampled).
        role: ``train`` (a training pool) or ``test`` (held out) for sources without their own
            split.
        per_class: keep only this many training items per class (few-label studies).
        corrupt: ``error`` or ``skip`` unreadable images (ImageFolder).
        num: number of items (generated sources).
        noise: label noise of the training pool (see :class:`workbench.data.noise.NoiseOptions`).
        exclude: a file of items to leave out of the training pool (``workbench clean``).
        scene: a ``rendered`` source by scene instead of ``path``: the bundled scene name or
            spec file to render ``num`` samples of with ``seed`` into the folder ``cache``
            (rendered when missing, resumed when unfinished; see :mod:`workbench.render.cache`).
        seed: dataset seed of a ``scene`` source (default 0).
        cache: the dataset folder of a ``scene`` source.
    """

    kind: str
    path: str | None = None
    name: str | None = None
    weights: dict[str, float] = field(
        default_factory=lambda: {"train": 1.0, "val": 1.0, "test": 1.0}
    )
    role: str = "train"
    per_class: int | None = None
    corrupt: str = "error"
    num: int | None = None
    noise: dict[str, Any] | None = None
    exclude: str | None = None
    scene: str | None = None
    seed: int | None = None
    cache: str | None = None


Builder = Callable[[SourceSpec], dict[str, Source]]
# kind -> builder(spec) -> {split: source} (``train`` is the pool)
SOURCE_KINDS: Registry[Builder] = Registry("source kind")
register_source = SOURCE_KINDS.register


@register_source("digits")
def _digits(spec: SourceSpec) -> dict[str, Source]:
    name = spec.name or "digits"
    return {
        "train": DigitsSource("train", spec.per_class, name),
        "val": DigitsSource("val", None, name),
        "test": DigitsSource("test", None, name),
    }


def need_path(spec: SourceSpec) -> str:
    """Returns the spec's path; raises a one-line error naming the kind when it has none."""
    if not spec.path:
        raise WorkbenchError(f"data.sources: a {spec.kind} source needs a path")
    return spec.path


def by_role(spec: SourceSpec, source: Source) -> dict[str, Source]:
    """Returns ``{role: source}`` for a source without its own splits.

    Raises:
        WorkbenchError: a role other than ``train`` or ``test``.
    """
    if spec.role not in ("train", "test"):
        raise WorkbenchError(f"data.sources: role must be train or test, got {spec.role!r}")
    return {spec.role: source}


@register_source("imagefolder")
def _imagefolder(spec: SourceSpec) -> dict[str, Source]:
    return by_role(spec, ImageFolderSource(need_path(spec), spec.corrupt, spec.name))


# scene -> dataset folder for rendered sources named by scene; filled by workbench.render.cache,
# which this module imports only when a config names a scene (data never imports render at load)
SCENE_RENDERERS: Registry[Callable[..., Path]] = Registry("scene renderer")


def _scene_dataset(spec: SourceSpec) -> str:
    """Renders what a scene source's cache lacks; returns the cache folder."""
    if spec.path is not None:
        raise WorkbenchError(
            f"data.sources: the rendered source {spec.name or spec.scene!r} names both a path and "
            "a scene; keep path (an existing dataset) or scene with num, seed and cache"
        )
    missing = [name for name in ("num", "cache") if getattr(spec, name) is None]
    if missing:
        raise WorkbenchError(
            f"data.sources: the rendered source of scene {spec.scene!r} needs "
            f"{' and '.join(missing)} (how many samples, and the folder to render them into)"
        )
    if spec.num < 1:
        raise WorkbenchError(
            f"data.sources: num of the rendered source of scene {spec.scene!r} must be at least "
            f"1, got {spec.num}"
        )
    if "scene" not in SCENE_RENDERERS:
        importlib.import_module("workbench.render.cache")
    return str(SCENE_RENDERERS.get("scene")(spec.scene, spec.num, spec.seed or 0, spec.cache))


@register_source("rendered")
def _rendered(spec: SourceSpec) -> dict[str, Source]:
    path = _scene_dataset(spec) if spec.scene is not None else need_path(spec)
    return by_role(spec, RenderedSource(path, spec.name))


@register_source("pseudo")
def _pseudo(spec: SourceSpec) -> dict[str, Source]:
    """Items labelled by an ensemble (``workbench pseudo-label``), read like a rendered dataset
    without dense labels."""
    source = RenderedSource(need_path(spec), spec.name)
    if source.dataset.manifest.get("kind") != "pseudo":
        raise WorkbenchError(
            f"data.sources: {spec.path} was not written by workbench pseudo-label; use kind "
            "rendered or generated for it"
        )
    return by_role(spec, source)


# kinds registered by later parts of the pipeline, imported only when a config names them
# (data never imports them at load)
_LATER_KINDS = {"generated": "workbench.generative.source"}


def build_source(spec: SourceSpec) -> dict[str, Source]:
    """Builds the per-split sources of one spec."""
    if spec.kind not in SOURCE_KINDS and spec.kind in _LATER_KINDS:
        importlib.import_module(_LATER_KINDS[spec.kind])
    if spec.kind not in SOURCE_KINDS:
        known = ", ".join(sorted({*SOURCE_KINDS, *_LATER_KINDS}))
        raise WorkbenchError(f"data.sources: unknown source kind {spec.kind!r}; known: {known}")
    return SOURCE_KINDS.get(spec.kind)(spec)
