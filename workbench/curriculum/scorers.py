"""Difficulty scorers: one score per training item, higher = harder.

A scorer is registered by name with :func:`register_scorer` and called as
``fn(dataset, context) -> float64 array of len(dataset)`` on the training
:class:`~workbench.data.datamodule.MixedDataset`, whose items are the items of its ``parts`` in
order. Scorers:

* ``difficulty``: the rendered scene difficulty in [0, 1] from each sample's JSON (exact, no
  image is read); items of sources without it score ``missing``.
* ``loss`` (self-paced, Kumar et al. 2010): the current model's per-item classification loss,
  recomputed at every epoch start by the :class:`~workbench.curriculum.callback.Curriculum`
  callback. At the first epoch that is the loss of the initial model.
* ``teacher`` (transfer scoring, Hacohen & Weinshall 2019): the per-item classification loss of
  a teacher checkpoint, computed once.
* ``domain``: items of the target sources (natural data by default) 1, all others 0, so the
  target share grows as the pool grows.
* ``random``: uniform random scores from the seed (control).

``loss`` and ``teacher`` need the trainer's model, device and processes, so the callback computes
them; under DDP every rank scores its share of the items and the shares are gathered, so every
rank holds the same scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.strategies import Strategy
from torch import nn
from torch.utils.data import DataLoader

from workbench.checkpoint import load_module
from workbench.data.datamodule import MixedDataset, Subset
from workbench.errors import WorkbenchError
from workbench.registry import Registry
from workbench.rng import stream

TARGET_KINDS = ("digits", "imagefolder")


@dataclass(frozen=True)
class ScoreContext:
    """What a scorer may use besides the training set.

    Attributes:
        source_names: name of every source, by source index.
        source_kinds: kind of every source, by source index.
        seed: seed of the ``random`` scorer.
        missing: ``difficulty`` score of items without a rendered difficulty.
        target_sources: ``domain`` target names (default: the sources of a kind in
            :data:`TARGET_KINDS`).
        teacher_checkpoint: the ``teacher`` scorer's checkpoint.
        model: the model being trained (``loss`` scorer).
        strategy: the trainer's strategy (device, rank, gathering); None = one CPU process.
        batch_size: items per forward pass of the model scorers.
        num_workers: DataLoader workers of the model scorers.
    """

    source_names: list[str]
    source_kinds: list[str]
    seed: int = 0
    missing: float = 1.0
    target_sources: list[str] | None = None
    teacher_checkpoint: str | None = None
    model: nn.Module | None = None
    strategy: Strategy | None = None
    batch_size: int = 256
    num_workers: int = 0


ScoreFn = Callable[[MixedDataset, ScoreContext], np.ndarray]


@dataclass(frozen=True)
class Scorer:
    """A registered scorer.

    Attributes:
        fn: the scoring function.
        needs_trainer: computed by the Curriculum callback with the trainer's model and devices.
        every_epoch: recomputed at every epoch start (else once).
    """

    fn: ScoreFn
    needs_trainer: bool = False
    every_epoch: bool = False


SCORERS: Registry[Scorer] = Registry("curriculum scorer")


def register_scorer(
    name: str, *, needs_trainer: bool = False, every_epoch: bool = False
) -> Callable[[ScoreFn], ScoreFn]:
    """Registers ``fn(dataset, context) -> scores`` under ``name``."""

    def decorate(fn: ScoreFn) -> ScoreFn:
        SCORERS.add(name, Scorer(fn, needs_trainer, every_epoch))
        return fn

    return decorate


def score(name: str, dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Returns the scores of scorer ``name``: float64, one per item of ``dataset``.

    Raises:
        WorkbenchError: an unknown scorer, or scores that are not one finite value per item.
    """
    try:
        scorer = SCORERS.get(name)
    except WorkbenchError as error:
        raise WorkbenchError(f"data.curriculum.scorer: {error}") from None
    scores = np.asarray(scorer.fn(dataset, context), np.float64)
    if scores.shape != (len(dataset),) or not np.isfinite(scores).all():
        raise WorkbenchError(
            f"curriculum scorer {name!r}: expected {len(dataset)} finite scores, got shape "
            f"{scores.shape} with {int((~np.isfinite(scores)).sum())} non-finite"
        )
    return scores


def _difficulties(part) -> np.ndarray | None:
    if isinstance(part, Subset):
        inner = _difficulties(part.source)
        return None if inner is None else inner[part.indices]
    method = getattr(part, "difficulties", None)
    return None if method is None else np.asarray(method(), np.float64)


@register_scorer("difficulty")
def difficulty_scores(dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Rendered scene difficulty; ``context.missing`` where a source or sample has none."""
    scores = []
    for _, part in dataset.parts:
        values = _difficulties(part)
        if values is None:
            values = np.full(len(part), np.nan)
        scores.append(np.where(np.isnan(values), context.missing, values))
    return np.concatenate(scores)


@register_scorer("domain")
def domain_scores(dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """1 for items of the target sources, 0 for the others.

    Raises:
        WorkbenchError: a target name that is no source.
    """
    names = context.source_names
    targets = context.target_sources
    if targets is None:
        targets = [n for n, k in zip(names, context.source_kinds, strict=True) if k in TARGET_KINDS]
    unknown = sorted(set(targets) - set(names))
    if unknown:
        raise WorkbenchError(
            f"data.curriculum.target_sources: unknown {unknown}; sources: {', '.join(names)}"
        )
    target_ids = [i for i, name in enumerate(names) if name in targets]
    return np.isin(dataset.source_ids(), target_ids).astype(np.float64)


@register_scorer("random")
def random_scores(dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Uniform random scores, deterministic in ``context.seed``."""
    return stream(context.seed, 0, "curriculum/random").random(len(dataset))


@register_scorer("loss", needs_trainer=True, every_epoch=True)
def loss_scores(dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Per-item classification loss of ``context.model`` (self-paced)."""
    if context.model is None:
        raise WorkbenchError("curriculum scorer 'loss': needs the model being trained")
    return item_losses(context.model, dataset, context)


@register_scorer("teacher", needs_trainer=True)
def teacher_scores(dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Per-item classification loss of the teacher checkpoint (transfer scoring).

    Raises:
        WorkbenchError: a missing checkpoint, or one for images of another channel count.
    """
    path = Path(str(context.teacher_checkpoint))
    if not path.is_file():
        raise WorkbenchError(f"data.curriculum.teacher_checkpoint: {path} not found")
    device = context.strategy.root_device if context.strategy is not None else "cpu"
    teacher = load_module(path, ["classifier"], map_location=device)
    if teacher.hparams.in_channels != dataset.channels:
        raise WorkbenchError(
            f"data.curriculum.teacher_checkpoint: {path} takes {teacher.hparams.in_channels} "
            f"channels, the data has {dataset.channels}"
        )
    return item_losses(teacher, dataset, context)


def item_losses(model: nn.Module, dataset: MixedDataset, context: ScoreContext) -> np.ndarray:
    """Returns the per-item classification loss of ``model`` on every item of ``dataset``.

    Computed in eval mode without gradients, in the dataset's order, batched, with images in the
    model's device and dtype; each module's train/eval mode is restored afterwards. Under DDP
    (``context.strategy`` with several processes) every rank scores an equal contiguous share
    and the shares are gathered, so every rank returns the same array.

    Args:
        model: a module whose ``forward(image)`` returns ``{"logits": ...}`` and which has
            ``per_sample_loss(logits, target)``, like
            :class:`~workbench.training.classifier.Classifier`.
        dataset: the training set.
        context: batch size, workers and strategy.

    Raises:
        WorkbenchError: a model without ``per_sample_loss``.
    """
    if not hasattr(model, "per_sample_loss"):
        raise WorkbenchError(
            f"curriculum loss scoring: {type(model).__name__} has no per_sample_loss "
            "(use workbench.training.classifier.Classifier)"
        )
    strategy = context.strategy
    rank, world = (strategy.global_rank, strategy.world_size) if strategy else (0, 1)
    shares = np.array_split(np.arange(len(dataset)), world)
    parameter = next(model.parameters())
    device = parameter.device
    loader = DataLoader(
        dataset,
        batch_size=context.batch_size,
        sampler=shares[rank].tolist(),
        num_workers=context.num_workers,
        generator=torch.Generator().manual_seed(0),  # leaves the global RNG alone
    )
    modes = {module: module.training for module in model.modules()}
    model.eval()
    losses = [torch.zeros(0, device=device)]
    try:
        with torch.no_grad():
            for batch in loader:
                logits = model(batch["image"].to(device, parameter.dtype))["logits"]
                losses.append(model.per_sample_loss(logits, batch["label"].to(device)).float())
    finally:
        for module, mode in modes.items():
            module.training = mode
    local = torch.cat(losses)
    if world > 1:
        padded = torch.zeros(len(shares[0]), device=device)  # the first share is the largest
        padded[: len(local)] = local
        gathered = strategy.all_gather(padded)
        local = torch.cat([gathered[r, : len(share)] for r, share in enumerate(shares)])
    return local.double().cpu().numpy()
