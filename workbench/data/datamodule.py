"""The Lightning DataModule that mixes natural, rendered and generated sources.

Every item is harmonised to ``channels x image_size x image_size``: images are resized with
antialiased bilinear filtering, segmentation and depth with nearest neighbour; one channel is
made from three by luminance (0.299 R + 0.587 G + 0.114 B), three from one by repetition.
A batch is a dict::

    image      float  B x C x S x S in [0, 1]
    label      long   B
    source     long   B       index into ``datamodule.source_names``
    seg        long   B x S x S  class index + 1, 0 = background, -1 = no label here
    depth      float  B x S x S  metres, 0 = no label here

Splits: a source's ``train`` pool gives the training set and, unless the source has its own
validation split (the natural digits do), ``val_fraction`` of it for validation; ``test``
comes from sources with a held-out split or ``role: test``. No test image may equal a training
or validation image (content hash); a leak is an error. The split is written to
``split.json`` in the run's log folder.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from workbench.data.sources import (
    DigitsSource,
    ImageFolderSource,
    RenderedSource,
    Source,
    content_hash,
)
from workbench.errors import WorkbenchError

SPLITS = ("train", "val", "test")


@dataclass
class SourceSpec:
    """One source of a mix, as written in a config.

    Attributes:
        kind: ``digits``, ``imagefolder``, ``rendered``, ``generated`` (see
            :mod:`workbench.generative.source`) or a kind registered by another part.
        path: folder (ImageFolder tree, rendered or sampled dataset) or checkpoint (generators).
        name: tag carried into every batch and used in metric names (default: the kind).
        weights: per split; ``train`` is the source's share of training draws, 0 leaves the
            source out of that split (evaluation splits are never subsampled).
        role: ``train`` (a training pool) or ``test`` (held out) for sources without their own
            split.
        per_class: keep only this many training items per class (few-label studies).
        corrupt: ``error`` or ``skip`` unreadable images (ImageFolder).
        num: number of items (generated sources).
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


Builder = Callable[[SourceSpec], dict[str, Source]]
_BUILDERS: dict[str, Builder] = {}


def register_source(kind: str) -> Callable[[Builder], Builder]:
    """Registers ``builder(spec) -> {split: source}`` for a source kind (``train`` is the pool)."""

    def decorate(builder: Builder) -> Builder:
        _BUILDERS[kind] = builder
        return builder

    return decorate


@register_source("digits")
def _digits(spec: SourceSpec) -> dict[str, Source]:
    name = spec.name or "digits"
    return {
        "train": DigitsSource("train", spec.per_class, name),
        "val": DigitsSource("val", None, name),
        "test": DigitsSource("test", None, name),
    }


def _need_path(spec: SourceSpec) -> str:
    if not spec.path:
        raise WorkbenchError(f"data.sources: a {spec.kind} source needs a path")
    return spec.path


def _by_role(spec: SourceSpec, source: Source) -> dict[str, Source]:
    if spec.role not in ("train", "test"):
        raise WorkbenchError(f"data.sources: role must be train or test, got {spec.role!r}")
    return {spec.role: source}


@register_source("imagefolder")
def _imagefolder(spec: SourceSpec) -> dict[str, Source]:
    return _by_role(spec, ImageFolderSource(_need_path(spec), spec.corrupt, spec.name))


@register_source("rendered")
def _rendered(spec: SourceSpec) -> dict[str, Source]:
    return _by_role(spec, RenderedSource(_need_path(spec), spec.name))


# kinds registered by later parts of the pipeline, imported only when a config names them
# (data never imports them at load)
_LATER_KINDS = {"generated": "workbench.generative.source"}


def build_source(spec: SourceSpec) -> dict[str, Source]:
    """Builds the per-split sources of one spec."""
    if spec.kind not in _BUILDERS and spec.kind in _LATER_KINDS:
        importlib.import_module(_LATER_KINDS[spec.kind])
    if spec.kind not in _BUILDERS:
        known = ", ".join(dict.fromkeys([*_BUILDERS, *_LATER_KINDS]))
        raise WorkbenchError(f"data.sources: unknown kind {spec.kind!r}; known: {known}")
    return _BUILDERS[spec.kind](spec)


class Subset:
    """A view of some items of a source."""

    def __init__(self, source: Source, indices: np.ndarray):
        self.source, self.indices = source, np.asarray(indices)
        self.name, self.classes = source.name, source.classes
        self.skipped = getattr(source, "skipped", [])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[int(self.indices[index])]

    def labels(self) -> np.ndarray:
        return np.asarray(_labels(self.source))[self.indices]


def _labels(source) -> np.ndarray:
    if hasattr(source, "labels"):
        return np.asarray(source.labels())
    return np.array([source[i]["label"] for i in range(len(source))])


def _per_class(source, k: int) -> Subset:
    labels = _labels(source)
    keep = np.concatenate([np.flatnonzero(labels == c)[:k] for c in np.unique(labels)])
    return Subset(source, np.sort(keep))


def _split_pool(source, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Stratified train / validation split of a pool, deterministic in ``seed``."""
    labels = _labels(source)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        val += members[: round(fraction * len(members))].tolist()
    val_mask = np.zeros(len(labels), bool)
    val_mask[val] = True
    return Subset(source, np.flatnonzero(~val_mask)), Subset(source, np.flatnonzero(val_mask))


def harmonise(item: dict[str, Any], size: int, channels: int) -> dict[str, torch.Tensor]:
    """Converts a source item to tensors of the common size and channel count."""
    image = torch.from_numpy(np.ascontiguousarray(item["image"], np.float32)).permute(2, 0, 1)
    if image.shape[0] != channels:
        if channels == 1:
            image = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(
                0, keepdim=True
            )
        else:
            image = image.expand(channels, -1, -1)
    if image.shape[1:] != (size, size):
        image = F.interpolate(
            image[None], (size, size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp(0, 1)
    out = {"image": image.contiguous(), "label": torch.tensor(item["label"])}
    for key, fill, dtype in (("seg", -1, torch.long), ("depth", 0.0, torch.float32)):
        value = item.get(key)
        if value is None:
            out[key] = torch.full((size, size), fill, dtype=dtype)
        else:
            tensor = torch.as_tensor(np.asarray(value)).to(torch.float32)[None, None]
            out[key] = F.interpolate(tensor, (size, size), mode="nearest")[0, 0].to(dtype)
    return out


class MixedDataset(Dataset):
    """Harmonised items of several sources, each tagged with its source index."""

    def __init__(self, parts: list[tuple[int, Source]], size: int, channels: int, cache: bool):
        self.parts = parts
        self.size, self.channels = size, channels
        self.offsets = np.cumsum([0] + [len(s) for _, s in parts])
        self._cache: list[dict[str, torch.Tensor]] | None = None
        if cache:
            self._cache = [self._load(i) for i in range(len(self))]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return part, index - int(self.offsets[part])

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        part, local = self.locate(index)
        source_id, source = self.parts[part]
        item = harmonise(source[local], self.size, self.channels)
        item["source"] = torch.tensor(source_id)
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self._cache[index] if self._cache is not None else self._load(index)

    def labels(self) -> np.ndarray:
        return np.concatenate([_labels(s) for _, s in self.parts]) if self.parts else np.array([])

    def source_ids(self) -> np.ndarray:
        return (
            np.concatenate([np.full(len(s), i) for i, s in self.parts])
            if self.parts
            else np.array([])
        )


class MixedSampler(DistributedSampler):
    """Weighted draws with replacement, a new order every epoch from ``(seed, epoch)``.

    Under DDP every rank takes a disjoint share (every ``world``-th draw), so Lightning keeps it
    as it is.
    """

    def __init__(self, weights: np.ndarray, num_samples: int, seed: int):
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        self.weights = torch.as_tensor(weights / weights.sum(), dtype=torch.double)
        self.total = num_samples - num_samples % world
        self.num_replicas, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self.num_samples = self.total // world

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        draws = torch.multinomial(self.weights, self.total, replacement=True, generator=generator)
        return iter(draws[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


class MixedDataModule(pl.LightningDataModule):
    """Mixes sources for training and evaluation; see the module docstring.

    Args:
        sources: the sources and their per-split weights.
        image_size: side of the harmonised images.
        channels: 1 (grey) or 3 (RGB).
        batch_size: per process.
        num_workers: DataLoader workers.
        val_fraction: share of a training pool held out for validation (stratified).
        balance_classes: draw training items so every class is equally likely.
        epoch_size: training draws per epoch (default: the size of the training set).
        augment: kornia augmentation options (see :func:`workbench.data.augment.build_augment`),
            applied to training batches only, consistently to image, segmentation and depth.
        cache: keep harmonised items in memory after the first load.
        seed: seed of the validation split and the sampler.
        curriculum: curriculum scheduling of the training draws (default: none); a mapping of

            scorer (required): how hard an item is: ``difficulty`` (rendered scene difficulty),
                ``loss`` (current model, self-paced, every epoch), ``teacher`` (loss of a
                teacher checkpoint), ``domain`` (target sources hard, others easy) or
                ``random`` (control).
            pacing: how the pool grows: ``linear`` (default), ``root``, ``quadratic``,
                ``exponential`` or ``step``.
            start: share of the training set in the pool at the first epoch (default 0.2).
            full_at: progress ``epoch / max_epochs`` from which the pool is the whole training
                set (default 0.8).
            order: ``easy_first`` (default, curriculum), ``hard_first`` (anti-curriculum) or
                ``random`` (the same pacing over a random ranking, the control).
            class_balanced: every class admits the same share of its own items (default false).
            teacher_checkpoint: the checkpoint of the ``teacher`` scorer.
            missing: ``difficulty`` of items without a rendered one (default 1.0, hardest).
            target_sources: source names the ``domain`` scorer calls hard (default: the sources
                of kind digits or imagefolder).

            Every epoch still draws ``epoch_size`` items, all from the pool, with the mixing
            weights renormalised there. The trainer needs ``max_epochs`` and the callback from
            :meth:`curriculum_callback` (the CLI adds it), which logs ``curriculum/pool_size``
            and ``curriculum/threshold`` and keeps the schedule in checkpoints; the ``loss`` and
            ``teacher`` scorers cannot do without it. See :mod:`workbench.curriculum`.
    """

    def __init__(
        self,
        sources: list[SourceSpec],
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        balance_classes: bool = False,
        epoch_size: int | None = None,
        augment: dict[str, Any] | None = None,
        cache: bool = True,
        seed: int = 0,
        curriculum: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        if channels not in (1, 3):
            raise WorkbenchError(f"data.channels: must be 1 or 3, got {channels}")
        if not sources:
            raise WorkbenchError("data.sources: at least one source is needed")
        self.specs = [s if isinstance(s, SourceSpec) else SourceSpec(**s) for s in sources]
        self.datasets: dict[str, MixedDataset] = {}
        self.source_names = [s.name or s.kind for s in self.specs]
        if "all" in self.source_names:
            raise WorkbenchError(
                "data.sources: 'all' names the whole split in metrics; rename that source"
            )
        if len(set(self.source_names)) != len(self.source_names):
            raise WorkbenchError(f"data.sources: names must differ, got {self.source_names}")
        self.classes: list[str] = []
        self.split_report: dict[str, Any] = {}
        self._augment = None
        self._curriculum = None
        if curriculum is not None:
            # curriculum builds on data: imported where used, so data never imports it at load
            from workbench.curriculum import CurriculumConfig

            self._curriculum = CurriculumConfig.from_dict(curriculum)
        self._splits = self._assemble()

    @property
    def num_classes(self) -> int:
        """Number of classes shared by all sources."""
        return len(self.classes)

    @property
    def channels(self) -> int:
        """Channels of the harmonised images."""
        return self.hparams.channels

    @property
    def image_size(self) -> int:
        """Side of the harmonised images."""
        return self.hparams.image_size

    def _assemble(self) -> dict[str, list[tuple[int, Source]]]:
        splits: dict[str, list[tuple[int, Source]]] = {k: [] for k in SPLITS}
        for sid, spec in enumerate(self.specs):
            built = build_source(spec)
            for part in built.values():
                part.name = self.source_names[sid]
                if not self.classes:
                    self.classes = list(part.classes)
                elif list(part.classes) != self.classes:
                    raise WorkbenchError(
                        f"data.sources: class names differ: {self.source_names[0]} has "
                        f"{self.classes}, {self.source_names[sid]} has {list(part.classes)}"
                    )
            pool = built.get("train")
            val = built.get("val")
            if pool is not None and val is None and self.hparams.val_fraction > 0:
                pool, val = _split_pool(pool, self.hparams.val_fraction, self.hparams.seed + sid)
            if pool is not None and spec.per_class is not None and spec.kind != "digits":
                pool = _per_class(pool, spec.per_class)
            for split, part in (("train", pool), ("val", val), ("test", built.get("test"))):
                if part is not None and len(part) and spec.weights.get(split, 1.0) > 0:
                    splits[split].append((sid, part))
        return splits

    def _check_leaks(self, splits: dict[str, list[tuple[int, Source]]]) -> None:
        seen: dict[str, str] = {}
        for split in ("train", "val"):
            for sid, part in splits[split]:
                for i in range(len(part)):
                    seen.setdefault(
                        content_hash(part[i]["image"]),
                        f"{split} item {i} of {self.source_names[sid]}",
                    )
        report: dict[str, Any] = {}
        for split in SPLITS:
            report[split] = {self.source_names[sid]: len(part) for sid, part in splits[split]}
        for sid, part in splits["test"]:
            for i in range(len(part)):
                other = seen.get(content_hash(part[i]["image"]))
                if other is not None:
                    raise WorkbenchError(
                        f"split leak: test item {i} of {self.source_names[sid]} equals {other}; "
                        "test data must not overlap training data"
                    )
        skipped = {
            self.source_names[sid]: len(part.skipped)
            for split in SPLITS
            for sid, part in splits[split]
            if getattr(part, "skipped", None)
        }
        if skipped:
            report["skipped_corrupt"] = skipped
        report["leak_check"] = f"passed: {len(seen)} training/validation images, none in test"
        self.split_report = report

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self._splits
        if not splits["train"] and stage in (None, "fit"):
            raise WorkbenchError("data.sources: no source contributes training data")
        self._check_leaks(splits)
        hp = self.hparams
        for split in SPLITS:
            self.datasets[split] = MixedDataset(splits[split], hp.image_size, hp.channels, hp.cache)
        if hp.augment:
            from workbench.data.augment import build_augment

            self._augment = build_augment(**hp.augment)
        trainer = getattr(self, "trainer", None)
        # the logger's own folder: trainer.log_dir is a collective under DDP; none under
        # fast_dev_run, whose dummy logger writes nothing
        log_dir = trainer.loggers[0].log_dir if trainer is not None and trainer.loggers else None
        if log_dir and trainer.is_global_zero:
            path = Path(log_dir) / "split.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps({"sources": self.source_names, **self.split_report}, indent=1)
            )

    def _train_weights(self) -> np.ndarray:
        dataset = self.datasets["train"]
        source_ids, labels = dataset.source_ids(), dataset.labels()
        weights = np.zeros(len(dataset))
        for sid, _ in dataset.parts:
            members = source_ids == sid
            weights[members] = self.specs[sid].weights.get("train", 1.0) / members.sum()
        if self.hparams.balance_classes:
            for c in np.unique(labels):
                members = labels == c
                weights[members] /= weights[members].sum()
        return weights

    def _loader(self, split: str, sampler=None) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self.datasets[split],
            batch_size=hp.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            # its own generator: making an iterator must not draw from the global RNG, which
            # EpochSeed sets for augmentation and dropout
            generator=torch.Generator().manual_seed(hp.seed),
        )

    def train_dataloader(self) -> DataLoader:
        num_samples = self.hparams.epoch_size or len(self.datasets["train"])
        if self._curriculum is not None:
            return self._loader("train", self._curriculum_sampler(num_samples))
        sampler = MixedSampler(self._train_weights(), num_samples, self.hparams.seed)
        if self.trainer is not None:
            sampler.set_epoch(self._sampler_epoch())
        return self._loader("train", sampler)

    def _sampler_epoch(self) -> int:
        # The epoch Lightning is about to give the sampler. DataLoader workers draw the first
        # epoch's items as soon as the loader is made, before Lightning sets the epoch; after a
        # resume from an epoch-end checkpoint it is neither 0 nor trainer.current_epoch.
        return self.trainer.fit_loop.epoch_progress.current.processed

    def _curriculum_sampler(self, num_samples: int) -> DistributedSampler:
        from workbench.curriculum import SCORERS, Curriculum, CurriculumSampler, ScoreContext, score

        config, hp, trainer = self._curriculum, self.hparams, self.trainer
        if trainer is None:
            raise WorkbenchError("data.curriculum: needs a trainer (the pacing follows max_epochs)")
        dataset = self.datasets["train"]
        sampler = CurriculumSampler(
            self._train_weights(),
            num_samples,
            hp.seed,
            trainer.max_epochs,
            config,
            dataset.labels(),
            hp.balance_classes,
        )
        sampler.set_epoch(self._sampler_epoch())
        context = ScoreContext(
            self.source_names,
            [spec.kind for spec in self.specs],
            seed=hp.seed,
            missing=config.missing,
            target_sources=config.target_sources,
            teacher_checkpoint=config.teacher_checkpoint,
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
        )
        needs_trainer = SCORERS[config.scorer].needs_trainer
        if not needs_trainer:
            sampler.set_scores(score(config.scorer, dataset, context), sampler.epoch)
        callback = next((c for c in trainer.callbacks if isinstance(c, Curriculum)), None)
        if callback is not None:
            callback.bind(trainer, sampler, dataset, context)
        elif needs_trainer:
            raise WorkbenchError(
                f"data.curriculum.scorer {config.scorer!r}: needs the Curriculum callback in "
                "trainer.callbacks (datamodule.curriculum_callback())"
            )
        return sampler

    def curriculum_callback(self) -> pl.Callback | None:
        """Returns a new :class:`~workbench.curriculum.Curriculum` callback for the trainer when
        ``curriculum`` is set, else None."""
        if self._curriculum is None:
            return None
        from workbench.curriculum import Curriculum

        return Curriculum()

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if self._augment is not None and self.trainer is not None and self.trainer.training:
            batch = self._augment(batch)
        return batch
