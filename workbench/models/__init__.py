"""Models: backbone registry, norms, init schemes, losses, sample weighting and the optimizer
and schedule factory for the LightningModules."""

from workbench.models import backbones, dense_backbones  # noqa: F401  (register the backbones)
from workbench.models.backbones import Backbone, saved_activation_bytes
from workbench.models.init import INIT_SCHEMES, initialize, load_backbone_weights
from workbench.models.losses import (
    CLASSIFICATION_LOSSES,
    DEPTH_LOSSES,
    SampleWeighting,
    classification_loss,
    depth_loss,
    hard_mining_weights,
    sample_weights,
    self_paced_weights,
)
from workbench.models.norms import NORMS, BatchRenorm2d, make_norm
from workbench.models.optim import (
    OPTIMIZERS,
    SCHEDULES,
    OptimizerOptions,
    ScheduleOptions,
    create_optimizer,
    with_schedule,
)
from workbench.models.registry import (
    BACKBONES,
    backbone_options,
    build_backbone,
    check_backbone_options,
)

__all__ = [
    "BACKBONES",
    "CLASSIFICATION_LOSSES",
    "DEPTH_LOSSES",
    "INIT_SCHEMES",
    "NORMS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Backbone",
    "BatchRenorm2d",
    "OptimizerOptions",
    "SampleWeighting",
    "ScheduleOptions",
    "backbone_options",
    "build_backbone",
    "check_backbone_options",
    "classification_loss",
    "create_optimizer",
    "depth_loss",
    "hard_mining_weights",
    "initialize",
    "load_backbone_weights",
    "make_norm",
    "sample_weights",
    "saved_activation_bytes",
    "self_paced_weights",
    "with_schedule",
]
