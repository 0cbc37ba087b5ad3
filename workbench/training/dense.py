"""The dense LightningModule: semantic segmentation, depth, or both, from one encoder-decoder.

Segmentation predicts ``len(class_names) + 1`` outputs per pixel (id 0 = background, id ``k +
1`` = class ``k``, as the renderer writes ``seg.png``); depth predicts metres through a
log-space head, ``depth_scale * exp(x)``. Losses count labelled pixels only: a pixel whose
``seg`` is -1 (padded in by augmentation) takes ``ignore_index``, a pixel with depth 0 has no
depth label.
"""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, ValidationError
from torch import nn

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError, option_error
from workbench.models import (
    OptimizerOptions,
    ScheduleOptions,
    initialize,
)
from workbench.models import depth_loss as depth_loss_fn
from workbench.models.dense_losses import segmentation_loss
from workbench.models.dense_metrics import DepthMetrics, SegmentationMetrics
from workbench.training.dense_overlays import DenseOverlays
from workbench.training.modules import (
    build_backbone_option,
    configure_optimizers,
    present_sources,
)

TASKS = ("segmentation", "depth", "both")
LOG_RANGE = 12.0  # the depth head's output is clamped to +-12 (a factor of 1.6e5) before exp


class DenseOptions(OptimizerOptions, ScheduleOptions):
    """The dense model's scalar options, checked when it is built (besides the optimizer's and
    the schedule's)."""

    model_config = ConfigDict(extra="ignore")

    task: Literal["segmentation", "depth", "both"] = "segmentation"
    seg_loss: Literal["cross_entropy", "dice", "cross_entropy+dice"] = "cross_entropy"
    seg_weight: float = Field(1.0, ge=0)
    depth_weight: float = Field(1.0, ge=0)
    depth_scale: float = Field(10.0, gt=0)
    overlays: int = Field(4, ge=0, le=32)


class DenseModule(pl.LightningModule):
    """Semantic segmentation and / or depth estimation on a registered backbone.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI.
        task: ``segmentation``, ``depth`` or ``both`` (one backbone, two 1x1 heads).
        classes: the class names this model is meant for; when set, data with other classes
            is refused (both lists shown). None = whatever the data has.
        backbone: a registered backbone; the encoder-decoders ``unet`` and ``fpn`` give
            full-resolution features, coarser ones (``resnet``) are upsampled bilinearly.
        backbone_options: options of the backbone.
        init: weight initialisation.
        seg_loss: ``cross_entropy``, ``dice`` or ``cross_entropy+dice``.
        class_weights: one weight per output (background first, then one per class) for the
            segmentation loss; None = equal.
        ignore_index: the target id of unlabelled pixels, outside ``0 .. num_classes``.
        depth_loss: one of :data:`workbench.models.losses.DEPTH_LOSSES` (``silog``, ``berhu``,
            ``l1``, ...), over the pixels with depth.
        depth_scale: metres of a zero output of the depth head, which predicts
            ``depth_scale * exp(x)``; a typical depth of the scenes starts training close.
        seg_weight, depth_weight: weights of the two losses when ``task`` is ``both``.
        optimizer, lr, weight_decay, momentum, nesterov, schedule, warmup_epochs, step_size,
            gamma: as for the classifier (:func:`workbench.models.optim.create_optimizer`).
        overlays: validation samples drawn each epoch as an image grid (image, prediction,
            ground truth, error map) into the run's ``overlays/`` folder and TensorBoard; 0 =
            none.

    Metrics (validation and test, for all data and per source): ``miou``, ``pixel_acc`` and
    ``iou_<class>`` for segmentation; ``absrel``, ``rmse``, ``log_rmse``, ``delta1..3`` for
    depth (see :mod:`workbench.models.dense_metrics`).
    """

    def __init__(
        self,
        num_classes: int = 6,
        in_channels: int = 3,
        image_size: int = 64,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        task: str = "segmentation",
        classes: list[str] | None = None,
        backbone: str = "unet",
        backbone_options: dict[str, Any] | None = None,
        init: str = "he_normal",
        seg_loss: str = "cross_entropy",
        class_weights: list[float] | None = None,
        ignore_index: int = -1,
        depth_loss: str = "silog",
        depth_scale: float = 10.0,
        seg_weight: float = 1.0,
        depth_weight: float = 1.0,
        optimizer: str = "adamw",
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        nesterov: bool = False,
        schedule: str = "cosine",
        warmup_epochs: int = 0,
        step_size: int = 10,
        gamma: float = 0.1,
        overlays: int = 4,
    ):
        super().__init__()
        self.save_hyperparameters()
        try:
            DenseOptions.model_validate(dict(self.hparams))
        except ValidationError as exc:
            raise option_error(exc, DenseOptions.model_fields, "model") from None
        self.source_names = list(source_names or ["data"])
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        if classes is not None and list(classes) != self.class_names:
            raise WorkbenchError(
                f"model.classes: the model is for {list(classes)}, the data has "
                f"{self.class_names}; render or choose data with the model's classes"
            )
        self.output_names = ["background", *self.class_names]
        self.segments = task in ("segmentation", "both")
        self.depths = task in ("depth", "both")
        self.backbone = build_backbone_option(backbone, in_channels, backbone_options or {})
        features = self.backbone.out_channels
        self.seg_head = nn.Conv2d(features, num_classes + 1, 1) if self.segments else None
        self.depth_head = nn.Conv2d(features, 1, 1) if self.depths else None
        initialize(self, init)
        self.seg_criterion = None
        if self.segments:
            try:
                self.seg_criterion = segmentation_loss(
                    seg_loss, num_classes + 1, class_weights, ignore_index
                )
            except WorkbenchError as exc:
                field = "class_weights" if "class_weights" in str(exc) else "ignore_index"
                if "segmentation loss" in str(exc):
                    field = "seg_loss"
                raise WorkbenchError(f"model.{field}: {exc}") from None
        self.depth_criterion = depth_loss_fn(depth_loss) if self.depths else None
        self.metrics = nn.ModuleDict()
        for stage in ("val", "test"):  # keyed by source index: names may hold dots
            for key in ["all", *map(str, range(len(self.source_names)))]:
                if self.segments:
                    self.metrics[f"seg_{stage}_{key}"] = SegmentationMetrics(
                        num_classes + 1, ignore_index
                    )
                if self.depths:
                    self.metrics[f"depth_{stage}_{key}"] = DepthMetrics()
        self.overlay_batch: dict[str, torch.Tensor] | None = None

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns ``seg`` (B x K+1 x H x W logits) and / or ``depth`` (B x H x W, metres)."""
        features = self.backbone(image)
        if features.shape[-2:] != image.shape[-2:]:
            features = F.interpolate(
                features, image.shape[-2:], mode="bilinear", align_corners=False
            )
        out = {}
        if self.seg_head is not None:
            out["seg"] = self.seg_head(features)
        if self.depth_head is not None:
            log_depth = self.depth_head(features)[:, 0].clamp(-LOG_RANGE, LOG_RANGE)
            out["depth"] = self.hparams.depth_scale * log_depth.exp()
        return out

    def seg_target(self, seg: torch.Tensor) -> torch.Tensor:
        """The batch's segmentation with unlabelled pixels (-1) set to ``ignore_index``."""
        return torch.where(seg < 0, torch.full_like(seg, self.hparams.ignore_index), seg)

    def losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Returns the loss of each head and their weighted ``total``."""
        hp = self.hparams
        losses: dict[str, torch.Tensor] = {}
        total = out[next(iter(out))].sum() * 0.0
        if self.seg_criterion is not None:
            losses["seg"] = self.seg_criterion(out["seg"], self.seg_target(batch["seg"]))
            total = total + (hp.seg_weight if self.depths else 1.0) * losses["seg"]
        if self.depth_criterion is not None:
            depth = batch["depth"]
            losses["depth"] = self.depth_criterion(out["depth"], depth, depth > 0)
            total = total + (hp.depth_weight if self.segments else 1.0) * losses["depth"]
        losses["total"] = total
        return losses

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        datasets = getattr(datamodule, "datasets", None)
        if datasets:
            check_dense_labels(datasets, self.segments, self.depths)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(self(batch["image"]), batch)
        if not torch.isfinite(losses["total"]):
            raise WorkbenchError(
                f"training loss is {losses['total'].item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); stopped. "
                "Lower model.lr or check the data"
            )
        self.log_dict(
            {f"train/{k}_loss": v for k, v in losses.items()},
            on_epoch=True,
            on_step=False,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        return losses["total"]

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int) -> None:
        out = self(batch["image"])
        losses = self.losses(out, batch)
        self.log(
            f"{stage}/loss",
            losses["total"],
            on_epoch=True,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        if stage == "val" and batch_idx == 0 and self.hparams.overlays:
            count = self.hparams.overlays
            self.overlay_batch = {
                "image": batch["image"][:count].detach().cpu(),
                **{k: batch[k][:count].detach().cpu() for k in ("seg", "depth")},
                **{f"pred_{k}": v[:count].detach().cpu() for k, v in out.items()},
            }
        members = {"all": torch.ones_like(batch["source"], dtype=torch.bool)}
        for sid in range(len(self.source_names)):
            members[str(sid)] = batch["source"] == sid
        for key, chosen in members.items():
            if not chosen.any():
                continue
            if self.segments:
                self.metrics[f"seg_{stage}_{key}"].update(
                    out["seg"][chosen], self.seg_target(batch["seg"][chosen])
                )
            if self.depths:
                self.metrics[f"depth_{stage}_{key}"].update(
                    out["depth"][chosen], batch["depth"][chosen]
                )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", batch_idx)

    def predict_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor]:
        out = self(batch["image"])
        result = {"source": batch["source"]}
        if "seg" in out:
            result["seg"] = out["seg"].argmax(dim=1)
        if "depth" in out:
            result["depth"] = out["depth"]
        return result

    def _log_metrics(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.sanity_checking:
            for metric in self.metrics.values():
                metric.reset()
            return
        prefix = "seg" if self.segments else "depth"
        per_source = [self.metrics[f"{prefix}_{stage}_{i}"] for i in range(len(self.source_names))]
        seen = present_sources(self, per_source)
        for key in ["all", *map(str, seen)]:
            name = key if key == "all" else self.source_names[int(key)]
            values: dict[str, torch.Tensor] = {}
            if self.segments:
                seg = self.metrics[f"seg_{stage}_{key}"].compute()
                values["miou"], values["pixel_acc"] = seg["miou"], seg["pixel_acc"]
                for class_name, iou in zip(self.output_names, seg["iou"], strict=True):
                    values[f"iou_{class_name}"] = iou
            if self.depths:
                values.update(self.metrics[f"depth_{stage}_{key}"].compute())
            self.log_dict({f"{stage}/{metric}/{name}": v for metric, v in values.items()})
        for metric in self.metrics.values():
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def configure_callbacks(self) -> list[pl.Callback]:
        return [DenseOverlays()] if self.hparams.overlays else []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "dense")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuses weights trained for other classes than this run's data has (``workbench
        test|predict --ckpt_path`` with another scene's data), both lists shown."""
        trained = (checkpoint.get("hyper_parameters") or {}).get("class_names")
        if trained is not None and list(trained) != self.class_names:
            raise WorkbenchError(
                f"--ckpt_path: the checkpoint was trained for {list(trained)}, the data has "
                f"{self.class_names}; use data of the checkpoint's scene"
            )

    def configure_optimizers(self):
        return configure_optimizers(self)


def check_dense_labels(datasets: dict, segments: bool, depths: bool) -> None:
    """Refuses data without the labels the task needs, naming the source and what is missing.

    Args:
        datasets: split name -> :class:`~workbench.data.datamodule.MixedDataset`.
        segments: whether the model predicts segmentation.
        depths: whether the model predicts depth.

    Raises:
        WorkbenchError: a source whose items have no ``seg`` (or no ``depth``) label.
    """
    wanted = [name for name, on in (("seg", segments), ("depth", depths)) if on]
    for split, dataset in datasets.items():
        for _, part in dataset.parts:
            if not len(part):
                continue
            item = part[0]
            missing = [name for name in wanted if item.get(name) is None]
            if missing:
                what = " and ".join({"seg": "segmentation", "depth": "depth"}[m] for m in missing)
                raise WorkbenchError(
                    f"data.sources: {part.name} ({split}) has no {what} labels, which this dense "
                    "model needs; use rendered data (workbench render) for every source"
                )
