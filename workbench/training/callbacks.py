"""Training callbacks."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import BasePredictionWriter
from torchmetrics.classification import MulticlassConfusionMatrix

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
                    strict=True,
                ):
                    name = names[source] if source < len(names) else source
                    writer.writerow([name, label, pred, *(f"{p:.6f}" for p in probs)])


class ConfusionCSV(pl.Callback):
    """Writes ``confusion_test.csv`` (true class by row, predicted class by column, counts over
    every rank) into the run's log folder at the end of ``test``.

    The module's ``test_step`` returns the class probabilities of the batch as ``probs``; the
    batch holds the true ``label``; the module's ``hparams.num_classes`` and ``class_names`` give
    the size and the names of the rows and columns.
    """

    def __init__(self):
        self.matrix: MulticlassConfusionMatrix | None = None

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        classes = pl_module.hparams.num_classes
        self.matrix = MulticlassConfusionMatrix(classes).to(pl_module.device)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.matrix.update(outputs["probs"], batch["label"])

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        matrix = self.matrix.compute().cpu()  # on every rank: the counts are summed over ranks
        self.matrix = None
        if not trainer.is_global_zero or not trainer.loggers:
            return
        path = Path(trainer.loggers[0].log_dir) / "confusion_test.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["true\\pred", *pl_module.class_names])
            for name, row in zip(pl_module.class_names, matrix.tolist(), strict=False):
                writer.writerow([name, *row])


class DensePredictionWriter(BasePredictionWriter):
    """Writes a dense model's predictions after ``workbench predict`` into the run's log folder:
    ``predictions/NNNNNN.seg.png`` (class id per pixel, 0 = background, as the renderer writes
    ``seg.png``) and ``predictions/NNNNNN.depth.npy`` (float32 metres), numbered in the order
    of the predict split, and ``predictions.csv`` listing every item with its source."""

    def __init__(self):
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not trainer.is_global_zero or not trainer.loggers:
            return
        folder = Path(trainer.loggers[0].log_dir)
        (folder / "predictions").mkdir(parents=True, exist_ok=True)
        names = getattr(pl_module, "source_names", None) or []
        rows, index = [], 0
        for batch in predictions:
            for position, source in enumerate(batch["source"].tolist()):
                stem = f"predictions/{index:06d}"
                files = []
                if "seg" in batch:
                    seg = batch["seg"][position].numpy().astype(np.uint8)
                    Image.fromarray(seg).save(folder / f"{stem}.seg.png")
                    files.append(f"{stem}.seg.png")
                if "depth" in batch:
                    depth = batch["depth"][position].numpy().astype(np.float32)
                    np.save(folder / f"{stem}.depth.npy", depth)
                    files.append(f"{stem}.depth.npy")
                name = names[source] if source < len(names) else source
                rows.append([index, name, *files])
                index += 1
        with (folder / "predictions.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            kinds = [k for k in ("seg", "depth") if predictions and k in predictions[0]]
            writer.writerow(["item", "source", *kinds])
            writer.writerows(rows)
