"""Curriculum scheduling: difficulty scorers, pacing functions, the sampler, the DataModule
that uses them and its callback.

Configured by ``data.init_args.curriculum`` of :class:`CurriculumDataModule`.
"""

from workbench.curriculum.callback import Curriculum
from workbench.curriculum.config import CurriculumConfig
from workbench.curriculum.datamodule import CurriculumDataModule
from workbench.curriculum.pacing import ORDERS, PACINGS, Pool, pacing_fraction, ranking, select_pool
from workbench.curriculum.sampler import CurriculumSampler
from workbench.curriculum.scorers import (
    SCORERS,
    ScoreContext,
    Scorer,
    item_losses,
    register_scorer,
    score,
)

__all__ = [
    "ORDERS",
    "PACINGS",
    "SCORERS",
    "Curriculum",
    "CurriculumConfig",
    "CurriculumDataModule",
    "CurriculumSampler",
    "Pool",
    "ScoreContext",
    "Scorer",
    "item_losses",
    "pacing_fraction",
    "ranking",
    "register_scorer",
    "score",
    "select_pool",
]
