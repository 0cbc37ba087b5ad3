"""The Curriculum callback: model-based scores, per-epoch logs and the schedule in checkpoints."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytorch_lightning as pl

from workbench.curriculum.sampler import CurriculumSampler
from workbench.curriculum.scorers import SCORERS, ScoreContext, score
from workbench.data.datamodule import MixedDataset
from workbench.errors import WorkbenchError


class Curriculum(pl.Callback):
    """Keeps a :class:`CurriculumSampler` on schedule.

    ``MixedDataModule.train_dataloader`` binds its sampler to this callback (Lightning draws the
    first epoch's items with DataLoader workers before any epoch hook runs, so the first epoch
    is prepared there). At every train epoch start the callback recomputes the scores of the
    ``loss`` scorer (the ``teacher`` scorer's once) and logs ``curriculum/pool_size`` and
    ``curriculum/threshold``. Its checkpoint state is the sampler's, so ``fit --ckpt_path``
    continues the schedule exactly: scores computed before an interruption are reused within
    their epoch, and a teacher is not needed again to resume.
    """

    def __init__(self):
        self._sampler: CurriculumSampler | None = None
        self._dataset: MixedDataset | None = None
        self._context: ScoreContext | None = None
        self._restored: dict[str, Any] | None = None

    def bind(
        self,
        trainer: pl.Trainer,
        sampler: CurriculumSampler,
        dataset: MixedDataset,
        context: ScoreContext,
    ) -> None:
        """Takes charge of a new training sampler whose epoch is already set.

        Args:
            trainer: the trainer that fits with it.
            sampler: the sampler.
            dataset: the training set it draws from.
            context: what the model-based scorers need besides the model and strategy.
        """
        self._sampler, self._dataset, self._context = sampler, dataset, context
        if self._restored is not None:
            epoch = sampler.epoch
            sampler.load_state_dict(self._restored)
            sampler.set_epoch(epoch)
            self._restored = None
        self._refresh(trainer)

    def _refresh(self, trainer: pl.Trainer) -> None:
        sampler = self._sampler
        scorer = SCORERS[sampler.config.scorer]
        stale = scorer.every_epoch and sampler.scored_epoch != sampler.epoch
        if scorer.needs_trainer and (sampler.scores is None or stale):
            context = replace(
                self._context, model=trainer.lightning_module, strategy=trainer.strategy
            )
            sampler.set_scores(score(sampler.config.scorer, self._dataset, context), sampler.epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._sampler is None:
            raise WorkbenchError(
                "the Curriculum callback needs a MixedDataModule with data.curriculum set"
            )
        self._refresh(trainer)
        pool = self._sampler.pool()
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

    def state_dict(self) -> dict[str, Any]:
        if self._sampler is not None:
            return self._sampler.state_dict()
        return dict(self._restored or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict) or None
