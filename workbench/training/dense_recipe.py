"""The studies' dense recipe: a U-Net trained for segmentation and depth on rendered sources, and
its scores (mIoU, per-class IoU, pixel accuracy, Eigen's depth errors) on a rendered folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from workbench.curriculum import Curriculum, CurriculumDataModule
from workbench.data.datamodule import MixedDataModule
from workbench.data.sources import RenderedSource
from workbench.data.transforms import harmonise
from workbench.models.dense_metrics import DepthMetrics, SegmentationMetrics
from workbench.training.callbacks import EpochSeed
from workbench.training.dense import DenseModule
from workbench.training.recipe import study_trainer


@dataclass
class DenseBudget:
    """The dense recipe: input, network and training budget.

    ``augment`` is the geometric augmentation every arm shares (shared by image and labels);
    an arm may add photometric options on top.
    """

    image_size: int = 64
    width: int = 16
    levels: int = 3
    epochs: int = 16
    epoch_size: int = 1024
    batch_size: int = 32
    lr: float = 3e-3
    augment: dict[str, Any] = field(default_factory=lambda: {"translate": 0.05, "hflip": True})


def train_dense(
    sources: list[dict[str, Any]],
    budget: DenseBudget,
    seed: int,
    curriculum: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
) -> DenseModule:
    """Trains the budget's U-Net for segmentation and depth on a mix of rendered sources;
    returns it in eval mode.

    Training draws follow the sources' ``train`` weights, ``epoch_size`` draws per epoch, on the
    schedule of ``curriculum`` when given; ``augment`` options are added to the budget's. No
    validation runs during training.
    """
    pl.seed_everything(seed, verbose=False)
    options = dict(
        sources=sources,
        image_size=budget.image_size,
        channels=3,
        batch_size=budget.batch_size,
        epoch_size=budget.epoch_size,
        val_fraction=0.0,
        augment={**budget.augment, **(augment or {})},
        seed=seed,
    )
    callbacks: list[pl.Callback] = [EpochSeed()]
    if curriculum is None:
        data = MixedDataModule(**options)
    else:
        data = CurriculumDataModule(curriculum=curriculum, **options)
        callbacks.append(Curriculum())
    model = DenseModule(
        num_classes=data.num_classes,
        in_channels=3,
        image_size=budget.image_size,
        source_names=data.source_names,
        class_names=data.classes,
        task="both",
        backbone="unet",
        backbone_options={"width": budget.width, "depth": budget.levels},
        seg_loss="cross_entropy+dice",
        lr=budget.lr,
        warmup_epochs=1,
        overlays=0,
    )
    study_trainer(budget.epochs, callbacks).fit(model, data)
    return model.eval()


def rendered_batches(folder: str | Path, image_size: int, batch: int = 64):
    """Yields a rendered folder's items harmonised to RGB ``image_size``, in batches of dicts
    (``image``, ``seg``, ``depth``) in the folder's order."""
    source = RenderedSource(folder)
    for start in range(0, len(source), batch):
        stop = min(start + batch, len(source))
        items = [harmonise(source[i], image_size, 3) for i in range(start, stop)]
        yield {key: torch.stack([item[key] for item in items]) for key in ("image", "seg", "depth")}


def dense_scores(model: DenseModule, folder: str | Path) -> dict[str, Any]:
    """Scores ``model`` on every item of a rendered folder at the model's image size.

    Returns:
        for segmentation ``miou``, ``pixel_acc`` and ``iou`` (by output name, background first;
        None for a class absent from labels and predictions); for depth the metrics of
        :data:`~workbench.models.dense_metrics.DEPTH_METRICS`.
    """
    seg = SegmentationMetrics(len(model.output_names), model.hparams.ignore_index)
    depth = DepthMetrics()
    with torch.no_grad():
        for batch in rendered_batches(folder, model.hparams.image_size):
            out = model(batch["image"])
            if model.segments:
                seg.update(out["seg"], model.seg_target(batch["seg"]))
            if model.depths:
                depth.update(out["depth"], batch["depth"])
    scores: dict[str, Any] = {}
    if model.segments:
        values = seg.compute()
        scores["miou"] = float(values["miou"])
        scores["pixel_acc"] = float(values["pixel_acc"])
        scores["iou"] = {
            name: None if iou.isnan() else float(iou)
            for name, iou in zip(model.output_names, values["iou"], strict=True)
        }
    if model.depths:
        scores.update({name: float(value) for name, value in depth.compute().items()})
    return scores
