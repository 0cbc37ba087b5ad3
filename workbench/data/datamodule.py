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
or validation image (content hash); a leak is an error. A source's training pool may carry label
noise made on purpose or leave out items a cleaning run named (:mod:`workbench.data.noise`). The
split, with the flipped and excluded items, is written to ``split.json`` in the run's log
folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from workbench.data.noise import NoiseOptions, NoisyLabels, read_exclude
from workbench.data.sources import (
    Source,
    SourceSpec,
    build_source,
    content_hash,
    source_labels,
)
from workbench.data.transforms import harmonise
from workbench.errors import WorkbenchError
from workbench.rng import epoch_seed

SPLITS = ("train", "val", "test")


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
        return np.asarray(source_labels(self.source))[self.indices]


def item_ids(part) -> np.ndarray:
    """The index of every item of ``part`` in its source's own training pool (through any
    subsets taken of it): the id that ``split.json``, ``workbench clean`` and exclude files use."""
    if isinstance(part, Subset):
        return item_ids(part.source)[part.indices]
    return np.arange(len(part))


def _per_class(source, k: int) -> Subset:
    labels = source_labels(source)
    keep = np.concatenate([np.flatnonzero(labels == c)[:k] for c in np.unique(labels)])
    return Subset(source, np.sort(keep))


def _split_pool(source, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Stratified train / validation split of a pool, deterministic in ``seed``."""
    labels = source_labels(source)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        val += members[: round(fraction * len(members))].tolist()
    val_mask = np.zeros(len(labels), bool)
    val_mask[val] = True
    return Subset(source, np.flatnonzero(~val_mask)), Subset(source, np.flatnonzero(val_mask))


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
        if not self.parts:
            return np.array([], np.int64)
        return np.concatenate([source_labels(s) for _, s in self.parts])

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
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
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
        augment: kornia augmentation options (see :class:`workbench.data.augment.AugmentOptions`),
            applied to training batches only, consistently to image, segmentation and depth.
        cache: keep harmonised items in memory after the first load.
        seed: seed of the validation split and the sampler.
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
        self.noise_report: dict[str, dict[str, Any]] = {}
        self.excluded: dict[str, int] = {}
        self._augment = None
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
            if pool is not None:
                pool = self._clean_or_noisy(sid, spec, pool)
            val = built.get("val")
            if pool is not None and val is None and self.hparams.val_fraction > 0:
                pool, val = _split_pool(pool, self.hparams.val_fraction, self.hparams.seed + sid)
            if pool is not None and spec.per_class is not None and spec.kind != "digits":
                pool = _per_class(pool, spec.per_class)
            for split, part in (("train", pool), ("val", val), ("test", built.get("test"))):
                if part is not None and len(part) and spec.weights.get(split, 1.0) > 0:
                    splits[split].append((sid, part))
        return splits

    def _clean_or_noisy(self, sid: int, spec: SourceSpec, pool: Source) -> Source:
        """The training pool with the spec's label noise and without its excluded items."""
        name = self.source_names[sid]
        if spec.noise is not None:
            prefix = f"data.sources[{sid}].noise"
            pool = NoisyLabels(pool, NoiseOptions.from_dict(spec.noise, prefix), prefix)
            self.noise_report[name] = pool.report()
        if spec.exclude is not None:
            left_out = read_exclude(spec.exclude, name, len(pool))
            self.excluded[name] = len(left_out)
            pool = Subset(pool, np.setdiff1d(np.arange(len(pool)), left_out))
        return pool

    def hold_out(self, held: np.ndarray) -> MixedDataset:
        """Takes the training items at positions ``held`` out of training (after
        :meth:`setup`) and returns them as a dataset of their own, for cross-fitting."""
        train = self.datasets["train"]
        mask = np.zeros(len(train), bool)
        mask[held] = True
        kept, out = [], []
        for number, (sid, part) in enumerate(train.parts):
            inside = mask[train.offsets[number] : train.offsets[number + 1]]
            kept.append((sid, Subset(part, np.flatnonzero(~inside))))
            out.append((sid, Subset(part, np.flatnonzero(inside))))
        hp = self.hparams
        self.datasets["train"] = MixedDataset(kept, hp.image_size, hp.channels, hp.cache)
        return MixedDataset(out, hp.image_size, hp.channels, hp.cache)

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
        if self.noise_report:
            report["noise"] = self.noise_report
        if self.excluded:
            report["excluded"] = self.excluded
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
            from workbench.data.augment import AugmentOptions

            self._augment = AugmentOptions.from_dict(hp.augment, "data.augment").build()
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
        return self._loader("train", self.train_sampler(num_samples))

    def train_sampler(self, num_samples: int) -> DistributedSampler:
        """Returns the sampler of the training draws: ``num_samples`` per epoch, following the
        sources' ``train`` weights (a subclass may schedule them, see
        :class:`workbench.curriculum.CurriculumDataModule`)."""
        sampler = MixedSampler(self._train_weights(), num_samples, self.hparams.seed)
        if self.trainer is not None:
            sampler.set_epoch(self._sampler_epoch())
        return sampler

    def _sampler_epoch(self) -> int:
        # The epoch Lightning is about to give the sampler. DataLoader workers draw the first
        # epoch's items as soon as the loader is made, before Lightning sets the epoch; after a
        # resume from an epoch-end checkpoint it is neither 0 nor trainer.current_epoch.
        return self.trainer.fit_loop.epoch_progress.current.processed

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
