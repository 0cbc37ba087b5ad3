"""Tiny trained generative checkpoints for the augmenter tests (8 px grey, a few steps)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytorch_lightning as pl

from workbench.checkpoint import KINDS
from workbench.data.datamodule import MixedDataModule

OPTIONS = {
    "vae": {"latent_dim": 4, "width": 4},
    "gan": {"latent_dim": 4, "width": 4},
    "refiner": {"width": 4, "blocks": 1, "disc_width": 4, "history_size": 8},
    "diffusion": {"widths": [8, 8], "attention": False, "train_steps": 20, "sample_steps": 4},
}


def fit_tiny(kind: str, path: Path, size: int = 8, sources: list[dict] | None = None) -> Path:
    """Trains a ``kind`` model (vae, gan, refiner, diffusion) for two steps and saves its
    checkpoint."""
    pl.seed_everything(0, verbose=False)
    data = MixedDataModule(
        sources or [{"kind": "digits", "name": "natural", "per_class": 3}],
        image_size=size,
        channels=1,
        batch_size=16,
        epoch_size=32,
    )
    module_name, _, class_name = KINDS[kind].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls(
        num_classes=data.num_classes,
        in_channels=1,
        image_size=size,
        source_names=data.source_names,
        class_names=data.classes,
        **OPTIONS[kind],
    )
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return path
