"""Training callbacks."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from workbench.rng import process_epoch_seed


class EpochSeed(pl.Callback):
    """Reseeds every random generator at the start of each training epoch from (seed, epoch).

    Dropout, stochastic depth and augmentation then depend only on the epoch, so a run resumed
    from an epoch-end checkpoint continues exactly as the uninterrupted run would have.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed = process_epoch_seed(
            int(os.environ.get("PL_GLOBAL_SEED", "0")), trainer.current_epoch, trainer.global_rank
        )
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


class PredictionCSV(BasePredictionWriter):
    """Writes ``predictions.csv`` (source, label, prediction, class probabilities) into the run's
    log folder after ``workbench predict``."""

    def __init__(self):
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not trainer.is_global_zero or not trainer.loggers:
            return
        path = Path(trainer.loggers[0].log_dir) / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        names = getattr(pl_module, "source_names", None) or []
        classes = getattr(pl_module, "class_names", None) or []
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source", "label", "pred", *(f"p_{c}" for c in classes)])
            for batch in predictions:
                for source, label, pred, probs in zip(
                    batch["source"].tolist(),
                    batch["label"].tolist(),
                    batch["pred"].tolist(),
                    batch["probs"].tolist(),
                ):
                    name = names[source] if source < len(names) else source
                    writer.writerow([name, label, pred, *(f"{p:.6f}" for p in probs)])
