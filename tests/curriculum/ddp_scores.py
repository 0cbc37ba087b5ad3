"""Fits with the loss scorer on two CPU processes (DDP) and writes, per rank and epoch, the
sampler's scores, pool size and draws to ``OUT/rank{r}.json``. Run as a script: Lightning starts
the second process by running it again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl

from workbench.curriculum import Curriculum, CurriculumDataModule
from workbench.training.callbacks import EpochSeed
from workbench.training.classifier import Classifier


class Dump(pl.Callback):
    """Records the sampler's state at every epoch start; writes it when training ends."""

    def __init__(self, out: Path):
        self.out, self.rows = out, []

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        self.rows.append(
            {
                "scores": sampler.scores.tolist(),
                "pool_size": len(sampler.pool().indices),
                "draws": list(sampler),
            }
        )

    def on_train_end(self, trainer, pl_module):
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))


CURRICULUM = {"scorer": "loss", "full_at": 1.0}

if __name__ == "__main__":
    pl.seed_everything(3)
    dm = CurriculumDataModule(
        sources=[{"kind": "digits"}], image_size=16, batch_size=32, epoch_size=256,
        curriculum=CURRICULUM,
    )
    model = Classifier(
        image_size=16, backbone="small_cnn", backbone_options={"width": 8, "depth": 2}, lr=0.01
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Curriculum(), EpochSeed(), Dump(Path(sys.argv[1]))],
    )
    trainer.fit(model, dm)
