"""Training callbacks."""

from __future__ import annotations

import os
import random

import numpy as np
import pytorch_lightning as pl
import torch


class EpochSeed(pl.Callback):
    """Reseeds every random generator at the start of each training epoch from (seed, epoch).

    Dropout, stochastic depth and augmentation then depend only on the epoch, so a run resumed
    from an epoch-end checkpoint continues exactly as the uninterrupted run would have.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed = (
            int(os.environ.get("PL_GLOBAL_SEED", "0")) * 1_000_003
            + trainer.current_epoch * 7919
            + trainer.global_rank
        )
        seed %= 2**32
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
