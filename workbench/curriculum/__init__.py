"""Curriculum scheduling: difficulty scorers, pacing functions, the sampler and its callback.

Configured by ``data.curriculum`` of :class:`~workbench.data.datamodule.MixedDataModule`.
"""

from workbench.curriculum.callback import Curriculum
from workbench.curriculum.config import CurriculumConfig
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
