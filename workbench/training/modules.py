"""What the workbench's task modules share: the backbone built from config options, the
optimizer and schedule from the hyperparameters, and which sources an epoch saw."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import Metric

from workbench.errors import WorkbenchError
from workbench.models import (
    BACKBONES,
    build_backbone,
    check_backbone_options,
    create_optimizer,
    with_schedule,
)


def build_backbone_option(name: str, in_channels: int, options: dict[str, Any]) -> nn.Module:
    """Builds the backbone; an error names ``model.backbone`` or ``model.backbone_options``."""
    try:
        BACKBONES.get(name)
    except WorkbenchError as exc:
        raise WorkbenchError(f"model.backbone: {exc}") from None
    check_backbone_options(name, options, "model.backbone_options")
    try:
        return build_backbone(name, in_channels, **options)
    except WorkbenchError as exc:  # a value the backbone refuses; its message names the option
        raise WorkbenchError(f"model.backbone_options: {exc}") from None


def configure_optimizers(module: pl.LightningModule):
    """The optimizer and schedule that ``module.hparams`` name (``optimizer``, ``lr``,
    ``weight_decay``, ``momentum``, ``nesterov``, ``schedule``, ``warmup_epochs``,
    ``step_size``, ``gamma``), for ``configure_optimizers``."""
    hp = module.hparams
    optimizer = create_optimizer(
        module.parameters(), hp.optimizer, hp.lr, hp.weight_decay, hp.momentum, hp.nesterov
    )
    trainer = module.trainer
    steps = int(trainer.estimated_stepping_batches) if hp.schedule == "onecycle" else None
    return with_schedule(
        optimizer,
        hp.schedule,
        epochs=max(1, int(trainer.max_epochs or 1)),
        total_steps=steps,
        warmup_epochs=hp.warmup_epochs,
        step_size=hp.step_size,
        gamma=hp.gamma,
    )


def present_sources(module: pl.LightningModule, metrics: list[Metric]) -> list[int]:
    """The positions in ``metrics`` (one per source) that were updated this epoch on any rank.

    The list is the same on every rank, so metric syncs line up; a run limited to a few
    batches (``limit_val_batches``) may see no example of a source, which then has no metric.
    """
    seen = torch.tensor([float(m.update_called) for m in metrics], device=module.device)
    trainer = module._trainer
    if trainer is not None and trainer.world_size > 1:
        seen = trainer.strategy.reduce(seen, reduce_op="sum")
    return [i for i in range(len(metrics)) if seen[i] > 0]
