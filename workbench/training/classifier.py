"""The classifier LightningModule: a registered backbone, a classification head and optional
dense heads (semantic segmentation, depth) trained only where labels exist."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, ValidationError
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError, option_error
from workbench.models import (
    OptimizerOptions,
    SampleWeighting,
    ScheduleOptions,
    classification_loss,
    initialize,
    load_backbone_weights,
    sample_weights,
)
from workbench.models import depth_loss as depth_loss_fn
from workbench.training.adversarial import AdversarialConfig, AdversarialTraining, trades_loss
from workbench.training.callbacks import ConfusionCSV
from workbench.training.modules import (
    build_backbone_option,
    configure_optimizers,
    present_sources,
)


class ClassifierOptions(OptimizerOptions, ScheduleOptions, SampleWeighting):
    """The classifier's scalar options that are checked when it is built: the optimizer's
    (:class:`~workbench.models.optim.OptimizerOptions`), the schedule's
    (:class:`~workbench.models.optim.ScheduleOptions`) and the sample weighting's
    (:class:`~workbench.models.losses.SampleWeighting`); its other arguments are ignored."""

    model_config = ConfigDict(extra="ignore")


class Classifier(pl.LightningModule):
    """Image classifier with optional segmentation and depth heads.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI.
        backbone: registered backbone name (``small_cnn``, ``resnet``).
        backbone_options: options of the backbone (depth, width, norm, dropout, drop_path,
            checkpointing, ...).
        init: weight initialisation (he_normal, he_uniform, xavier_normal, xavier_uniform).
        init_checkpoint: a checkpoint whose backbone weights start this model (transfer
            learning); the heads start new.
        loss: ``cross_entropy`` or ``focal``; ``label_smoothing`` and ``focal_gamma`` tune them.
        hard_mining: online hard example mining (Shrivastava et al. 2016): the training
            classification loss is the mean of the largest ``ceil(hard_mining * B)`` per-sample
            losses of each batch; the other samples get no gradient. 1.0 = off.
        self_paced: self-paced learning with binary weights (Kumar et al. 2010): a training
            sample counts only while its classification loss is below the age threshold
            ``lambda = self_paced * self_paced_growth ** epoch`` (in loss units: a uniform guess
            over K classes costs ln K, 2.3 for ten), and the loss is ``sum(v_i l_i) / B``, so a
            batch of dropped samples contributes nothing. None = off. Binary rather than the
            linear weights of Jiang et al. 2014: the threshold stays one readable number.
        self_paced_growth: the factor by which ``lambda`` grows every epoch (>= 1).
        seg_weight, depth_weight: weights of the dense heads' losses (0 = no head).
        depth_loss: one of :data:`workbench.models.losses.DEPTH_LOSSES`.
        optimizer: sgd, adam, adamw or amsgrad; ``lr``, ``weight_decay``, ``momentum``,
            ``nesterov`` tune it.
        schedule: none, step, cosine or onecycle; ``warmup_epochs`` of linear warm-up first;
            ``step_size`` and ``gamma`` for step.
        adversarial: adversarial training and robust accuracy, a mapping of ``method`` (pgd,
            trades or none), ``eps``, ``steps``, ``step_size``, ``beta`` (TRADES), ``mix``
            (fraction of each batch replaced by PGD examples), ``start_epoch``,
            ``ramp_epochs``, ``val_eps`` and ``val_steps``; see
            :class:`workbench.training.adversarial.AdversarialConfig`. Validation and test then
            log ``robust_acc`` (PGD at ``val_eps``) next to ``acc``. None = off.

    The optimizer and schedule come from :func:`workbench.models.optim.create_optimizer` and
    :func:`~workbench.models.optim.with_schedule`; ``test`` writes ``confusion_test.csv`` through
    the :class:`~workbench.training.callbacks.ConfusionCSV` callback that the model configures.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        backbone: str = "resnet",
        backbone_options: dict[str, Any] | None = None,
        init: str = "he_normal",
        init_checkpoint: str | None = None,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        focal_gamma: float = 2.0,
        hard_mining: float = 1.0,
        self_paced: float | None = None,
        self_paced_growth: float = 1.1,
        seg_weight: float = 0.0,
        depth_weight: float = 0.0,
        depth_loss: str = "l1",
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        nesterov: bool = False,
        schedule: str = "cosine",
        warmup_epochs: int = 0,
        step_size: int = 10,
        gamma: float = 0.1,
        adversarial: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        try:
            ClassifierOptions.model_validate(dict(self.hparams))
        except ValidationError as exc:
            raise option_error(exc, ClassifierOptions.model_fields, "model") from None
        self.source_names = list(source_names or ["data"])
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.backbone = build_backbone_option(backbone, in_channels, backbone_options or {})
        features = self.backbone.out_channels
        self.head = nn.Linear(features, num_classes)
        self.seg_head = nn.Conv2d(features, num_classes + 1, 1) if seg_weight > 0 else None
        self.depth_head = nn.Conv2d(features, 1, 1) if depth_weight > 0 else None
        initialize(self, init)
        if init_checkpoint:
            skipped = load_backbone_weights(self.backbone, init_checkpoint)
            if skipped:
                rank_zero_info(
                    f"init_checkpoint: kept new weights for {len(skipped)} tensors of other shapes"
                )
            # the loaded weights are now this model's own state: reloading it must not need the file
            self.hparams.init_checkpoint = None
        self.cls_loss = classification_loss(loss, label_smoothing, focal_gamma)
        self.per_sample_loss = classification_loss(loss, label_smoothing, focal_gamma, "none")
        self.depth_criterion = depth_loss_fn(depth_loss) if depth_weight > 0 else None
        self.metrics = nn.ModuleDict()
        for stage in ("val", "test"):  # keyed by source index: names may hold dots
            for key in ["all", *map(str, range(len(self.source_names)))]:
                self.metrics[f"{stage}_{key}"] = MetricCollection(
                    {
                        "acc": MulticlassAccuracy(num_classes, average="micro"),
                        "ece": MulticlassCalibrationError(num_classes, n_bins=15),
                    }
                )
        self.adversarial = None
        if adversarial is not None:
            config = AdversarialConfig.from_dict(adversarial, "model.adversarial")
            self.adversarial = AdversarialTraining(config)
            if self.adversarial.robust_metric:
                for key in list(self.metrics):
                    self.metrics[f"robust_{key}"] = MetricCollection(
                        {"robust_acc": MulticlassAccuracy(num_classes, average="micro")}
                    )

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns ``logits`` (B x K) and, when the heads exist, ``seg`` (B x K+1 x H x W) and
        ``depth`` (B x H x W, metres)."""
        features = self.backbone(image)
        out = {"logits": self.head(features.mean(dim=(2, 3)))}
        size = image.shape[-2:]
        if self.seg_head is not None:
            out["seg"] = F.interpolate(
                self.seg_head(features), size, mode="bilinear", align_corners=False
            )
        if self.depth_head is not None:
            depth = F.interpolate(
                self.depth_head(features), size, mode="bilinear", align_corners=False
            )
            out["depth"] = F.softplus(depth[:, 0])
        return out

    def classification_term(
        self, logits: torch.Tensor, target: torch.Tensor, training: bool = False
    ) -> torch.Tensor:
        """Returns the classification loss; in training with ``hard_mining`` or ``self_paced``,
        the per-sample losses weighted by :func:`workbench.models.losses.sample_weights` at the
        current epoch."""
        hp = self.hparams
        if not training or (hp.hard_mining == 1 and hp.self_paced is None):
            return self.cls_loss(logits, target)
        losses = self.per_sample_loss(logits, target)
        weights = sample_weights(
            losses.detach(),
            self.current_epoch,
            hp.hard_mining,
            hp.self_paced,
            hp.self_paced_growth,
        )
        self.log(
            "train/kept_fraction",
            (weights > 0).float().mean(),
            on_step=False,
            on_epoch=True,
            batch_size=len(target),
            sync_dist=True,
        )
        return (weights * losses).sum()

    def _losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], training: bool = False
    ) -> dict[str, torch.Tensor]:
        losses = {"cls": self.classification_term(out["logits"], batch["label"], training)}
        if self.seg_head is not None:
            labelled = batch["seg"] >= 0
            seg = F.cross_entropy(out["seg"], batch["seg"].clamp(min=0), reduction="none")
            losses["seg"] = (seg * labelled).sum() / labelled.sum().clamp(min=1)
        if self.depth_head is not None:
            losses["depth"] = self.depth_criterion(out["depth"], batch["depth"], batch["depth"] > 0)
        hp = self.hparams
        losses["total"] = (
            losses["cls"]
            + hp.seg_weight * losses.get("seg", 0.0)
            + hp.depth_weight * losses.get("depth", 0.0)
        )
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        adversarial, epoch = self.adversarial, self.current_epoch
        x_trades = None
        if adversarial is not None and adversarial.trains(epoch):
            image, label, seed = batch["image"], batch["label"], self.global_step
            if adversarial.config.method == "pgd":
                batch = {**batch, "image": adversarial.pgd_batch(self, image, label, epoch, seed)}
            else:
                x_trades = adversarial.trades_examples(self, image, epoch, seed)
            self.log("train/adv_eps", adversarial.eps_at(epoch), on_step=False, on_epoch=True)
        out = self(batch["image"])
        losses = self._losses(out, batch, training=True)
        if x_trades is not None:
            losses["trades"] = trades_loss(out["logits"], self(x_trades)["logits"])
            losses["total"] = losses["total"] + adversarial.config.beta * losses["trades"]
        if not torch.isfinite(losses["total"]):
            raise WorkbenchError(
                f"training loss is {losses['total'].item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); stopped. "
                "Lower model.lr or check the data"
            )
        self.log_dict(
            {f"train/{k}_loss": v for k, v in losses.items()},
            prog_bar=False,
            on_epoch=True,
            on_step=False,
            batch_size=len(batch["label"]),
            sync_dist=True,
        )
        return losses["total"]

    def _eval_step(
        self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        out = self(batch["image"])
        losses = self._losses(out, batch)
        self.log(
            f"{stage}/loss",
            losses["total"],
            on_epoch=True,
            batch_size=len(batch["label"]),
            sync_dist=True,
        )
        probs = out["logits"].softmax(dim=1)
        self._update(stage, probs, batch)
        if self.adversarial is not None and self.adversarial.robust_metric:
            image = self.adversarial.robust_examples(
                self, batch["image"], batch["label"], batch_idx
            )
            robust = self(image)["logits"].softmax(dim=1)
            self._update(f"robust_{stage}", robust, batch)
        return {"probs": probs}

    def _update(self, prefix: str, probs: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        self.metrics[f"{prefix}_all"].update(probs, batch["label"])
        for sid in range(len(self.source_names)):
            members = batch["source"] == sid
            if members.any():
                self.metrics[f"{prefix}_{sid}"].update(probs[members], batch["label"][members])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "test", batch_idx)

    def predict_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor]:
        probs = self(batch["image"])["logits"].softmax(dim=1)
        return {
            "probs": probs,
            "pred": probs.argmax(dim=1),
            "label": batch["label"],
            "source": batch["source"],
        }

    def _log_metrics(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.sanity_checking:  # a few batches: no metrics
            for collection in self.metrics.values():
                collection.reset()
            return
        sources = [self.metrics[f"{stage}_{i}"]["acc"] for i in range(len(self.source_names))]
        for key in ["all", *present_sources(self, sources)]:
            name = key if key == "all" else self.source_names[key]
            for prefix in ("", "robust_"):
                if f"{prefix}{stage}_{key}" in self.metrics:
                    values = self.metrics[f"{prefix}{stage}_{key}"].compute()
                    self.log_dict({f"{stage}/{metric}/{name}": v for metric, v in values.items()})
        for collection in self.metrics.values():
            collection.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def configure_callbacks(self) -> list[pl.Callback]:
        return [ConfusionCSV()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "classifier")

    def configure_optimizers(self):
        return configure_optimizers(self)
