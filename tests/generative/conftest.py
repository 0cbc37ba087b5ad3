"""Tiny data and trainers shared by the generative model tests."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

from workbench.data.datamodule import MixedDataModule


def tiny_trainer(steps: int, **kwargs) -> pl.Trainer:
    """A quiet CPU trainer for ``steps`` optimisation steps, without logs or checkpoints."""
    options = {
        "max_steps": steps,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
    }
    return pl.Trainer(**{**options, **kwargs})


@pytest.fixture
def digits8() -> MixedDataModule:
    """The natural digits at 8 x 8, grey, batches of 32."""
    return MixedDataModule([{"kind": "digits", "name": "natural"}], image_size=8, batch_size=32)
