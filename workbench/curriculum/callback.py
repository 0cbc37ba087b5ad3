"""The Curriculum callback: per-epoch rescoring and logs of a curriculum's schedule."""

from __future__ import annotations

import pytorch_lightning as pl

from workbench.errors import WorkbenchError


class Curriculum(pl.Callback):
    """Keeps the training draws of a :class:`~workbench.curriculum.CurriculumDataModule` on
    schedule.

    At every train epoch start it takes the DataModule from ``trainer.datamodule``, has it
    rescore what is stale (the ``loss`` scorer every epoch) and logs ``curriculum/pool_size`` and
    ``curriculum/threshold``. The schedule itself is the DataModule's checkpoint state.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if getattr(datamodule, "sampler", None) is None or not hasattr(
            datamodule, "refresh_scores"
        ):
            raise WorkbenchError(
                "the Curriculum callback needs data.class_path "
                "workbench.curriculum.CurriculumDataModule with data.init_args.curriculum set"
            )
        datamodule.refresh_scores()
        pool = datamodule.sampler.pool()
        pl_module.log_dict(
            {
                "curriculum/pool_size": float(len(pool.indices)),
                "curriculum/threshold": pool.threshold,
            },
            on_step=False,
            on_epoch=True,
            batch_size=1,
            sync_dist=True,  # equal on every rank; the sync keeps Lightning's DDP check quiet
        )
