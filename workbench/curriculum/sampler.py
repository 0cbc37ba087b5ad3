"""The curriculum sampler: weighted draws from the pool that the pacing admits this epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DistributedSampler

from workbench.curriculum.config import CurriculumConfig
from workbench.curriculum.pacing import Pool, pacing_fraction, ranking, select_pool
from workbench.errors import WorkbenchError
from workbench.rng import epoch_seed


class CurriculumSampler(DistributedSampler):
    """Draws ``num_samples`` items per epoch, with replacement, from the current pool only.

    The pool at epoch ``e`` is the admitted part of the score ranking at progress
    ``e / max_epochs`` (see :mod:`workbench.curriculum.pacing`). Within the pool items keep their
    mixing weights, renormalised (per class with ``balance_classes``). The draws depend only on
    ``(seed, epoch)`` and the scores; under DDP every rank takes a disjoint share (every
    ``world``-th draw), so Lightning keeps the sampler as it is. Epochs keep their length.

    Args:
        weights: mixing weight of every training item.
        num_samples: draws per epoch over all processes.
        seed: seed of the draws and the tie-breaking of the ranking.
        max_epochs: the training length that progress is measured against (the trainer's).
        config: pacing, order and class balance.
        labels: class of every training item.
        balance_classes: every class in the pool equally likely.
        scores: the items' difficulty; for the scorers that need the model the Curriculum
            callback sets them with :meth:`set_scores`.
    """

    def __init__(
        self,
        weights: np.ndarray,
        num_samples: int,
        seed: int,
        max_epochs: int | None,
        config: CurriculumConfig,
        labels: np.ndarray,
        balance_classes: bool = False,
        scores: np.ndarray | None = None,
    ):
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if max_epochs is None or max_epochs < 1:
            raise WorkbenchError(
                f"data.curriculum: pacing needs trainer.max_epochs >= 1, got {max_epochs}"
            )
        self.weights = np.asarray(weights, np.float64)
        self.labels = np.asarray(labels)
        self.config, self.max_epochs, self.balance_classes = config, max_epochs, balance_classes
        self.total = num_samples - num_samples % world
        self.num_replicas, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self.num_samples = self.total // world
        self.scores: np.ndarray | None = None
        self.scored_epoch = -1
        self._ranked = np.zeros(0, np.int64)
        if scores is not None:
            self.set_scores(scores, 0)

    def set_scores(self, scores: np.ndarray, epoch: int) -> None:
        """Sets the difficulty of every item, computed at the start of ``epoch``.

        Raises:
            WorkbenchError: not one score per item.
        """
        scores = np.asarray(scores, np.float64)
        if scores.shape != self.weights.shape:
            raise WorkbenchError(
                f"curriculum: {len(scores)} scores for {len(self.weights)} training items; "
                "the training set changed"
            )
        self.scores, self.scored_epoch = scores, epoch
        self._ranked = ranking(scores, self.config.order, self.seed)

    def fraction(self) -> float:
        """Returns the share of the training set admitted at the current epoch."""
        config = self.config
        progress = self.epoch / self.max_epochs
        return pacing_fraction(config.pacing, progress, config.start, config.full_at)

    def pool(self) -> Pool:
        """Returns the pool of the current epoch.

        Raises:
            WorkbenchError: no scores yet.
        """
        if self.scores is None:
            raise WorkbenchError(
                f"curriculum scorer {self.config.scorer!r}: no scores yet; the "
                "CurriculumDataModule scores its training set when it makes the train loader"
            )
        labels = self.labels if self.config.class_balanced else None
        return select_pool(self.scores, self._ranked, self.fraction(), self.config.order, labels)

    def __iter__(self):
        indices = self.pool().indices
        weights = self.weights[indices]
        if self.balance_classes:
            labels = self.labels[indices]
            for c in np.unique(labels):
                weights[labels == c] /= weights[labels == c].sum()
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        probabilities = torch.as_tensor(weights / weights.sum(), dtype=torch.double)
        draws = torch.multinomial(probabilities, self.total, replacement=True, generator=generator)
        return iter(indices[draws.numpy()][self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def state_dict(self) -> dict[str, Any]:
        """Returns the schedule's state: scores, the epoch they were computed at, the epoch,
        and the pool size and threshold of that epoch."""
        state: dict[str, Any] = {
            "scores": None if self.scores is None else torch.from_numpy(self.scores.copy()),
            "scored_epoch": self.scored_epoch,
            "epoch": self.epoch,
        }
        if self.scores is not None:
            pool = self.pool()
            state.update(pool_size=len(pool.indices), threshold=pool.threshold)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`; warns when the restored epoch's pool differs from the
        saved one (``max_epochs`` or ``data.curriculum`` changed since).

        Raises:
            WorkbenchError: scores for another training set.
        """
        self.epoch = int(state["epoch"])
        if state["scores"] is None:
            return
        self.set_scores(np.asarray(state["scores"], np.float64), int(state["scored_epoch"]))
        pool = self.pool()
        saved = (state["pool_size"], state["threshold"])
        if saved[0] != len(pool.indices) or not np.isclose(
            saved[1], pool.threshold, equal_nan=True
        ):
            rank_zero_warn(
                f"curriculum: epoch {self.epoch} had a pool of {saved[0]} items (threshold "
                f"{saved[1]:.4g}), the restored schedule gives {len(pool.indices)} "
                f"({pool.threshold:.4g}): max_epochs or data.curriculum changed since"
            )
