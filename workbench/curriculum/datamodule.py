"""The DataModule with a curriculum: a :class:`MixedDataModule` whose training draws follow a
difficulty schedule.

Chosen in a config by ``class_path`` (LightningCLI's subclass mode)::

    data:
      class_path: workbench.curriculum.CurriculumDataModule
      init_args:
        curriculum: {scorer: domain, pacing: linear, start: 0.3, full_at: 0.7}
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from workbench.curriculum.callback import Curriculum
from workbench.curriculum.config import CurriculumConfig
from workbench.curriculum.sampler import CurriculumSampler
from workbench.curriculum.scorers import SCORERS, ScoreContext, score
from workbench.data.datamodule import MixedDataModule
from workbench.errors import WorkbenchError


class CurriculumDataModule(MixedDataModule):
    """A :class:`MixedDataModule` that draws each epoch's items from a growing pool.

    Args:
        curriculum: a mapping of

            scorer (required): how hard an item is: ``difficulty`` (rendered scene difficulty),
                ``loss`` (current model, self-paced, every epoch), ``teacher`` (loss of a
                teacher checkpoint), ``domain`` (target sources hard, others easy) or
                ``random`` (control).
            pacing: how the pool grows: ``linear`` (default), ``root``, ``quadratic``,
                ``exponential`` or ``step``.
            start: share of the training set in the pool at the first epoch (default 0.2).
            full_at: progress ``epoch / max_epochs`` from which the pool is the whole training
                set (default 0.8).
            order: ``easy_first`` (default, curriculum), ``hard_first`` (anti-curriculum) or
                ``random`` (the same pacing over a random ranking, the control).
            class_balanced: every class admits the same share of its own items (default false).
            teacher_checkpoint: the checkpoint of the ``teacher`` scorer.
            missing: ``difficulty`` of items without a rendered one (default 1.0, hardest).
            target_sources: source names the ``domain`` scorer calls hard (default: the sources
                of kind digits or imagefolder).
        **kwargs: the options of :class:`MixedDataModule`.

    Every epoch still draws ``epoch_size`` items, all from the pool, with the mixing weights
    renormalised there. The trainer needs ``max_epochs``; the ``loss`` scorer also needs the
    :class:`~workbench.curriculum.Curriculum` callback (the CLI adds it), which rescores at every
    epoch start and logs ``curriculum/pool_size`` and ``curriculum/threshold``. The schedule is
    this DataModule's checkpoint state, so ``fit --ckpt_path`` continues it exactly: scores
    computed before an interruption are reused within their epoch, and a teacher is not needed
    again to resume.
    """

    def __init__(self, curriculum: dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.curriculum = CurriculumConfig.from_dict(curriculum, "data.curriculum")
        self.sampler: CurriculumSampler | None = None
        self._context: ScoreContext | None = None
        self._restored: dict[str, Any] | None = None

    def train_sampler(self, num_samples: int) -> CurriculumSampler:
        """Returns the curriculum sampler of the training draws, scored for its first epoch.

        Lightning draws the first epoch's items as soon as the loader exists, before any epoch
        hook, so the first scores are computed here; the callback keeps them current after.
        """
        config, hp, trainer = self.curriculum, self.hparams, self.trainer
        if trainer is None:
            raise WorkbenchError("data.curriculum: needs a trainer (the pacing follows max_epochs)")
        scorer = SCORERS[config.scorer]
        if scorer.every_epoch and not any(isinstance(c, Curriculum) for c in trainer.callbacks):
            raise WorkbenchError(
                f"data.curriculum.scorer {config.scorer!r}: needs the Curriculum callback in "
                "trainer.callbacks (workbench.curriculum.Curriculum)"
            )
        dataset = self.datasets["train"]
        sampler = CurriculumSampler(
            self._train_weights(),
            num_samples,
            hp.seed,
            trainer.max_epochs,
            config,
            dataset.labels(),
            hp.balance_classes,
        )
        epoch = self._sampler_epoch()
        if self._restored is not None:
            sampler.load_state_dict(self._restored)
            self._restored = None
        sampler.set_epoch(epoch)
        self.sampler = sampler
        self._context = ScoreContext(
            self.source_names,
            [spec.kind for spec in self.specs],
            seed=hp.seed,
            missing=config.missing,
            target_sources=config.target_sources,
            teacher_checkpoint=config.teacher_checkpoint,
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
        )
        self.refresh_scores()
        return sampler

    def refresh_scores(self) -> None:
        """Scores the training set for the sampler's epoch when its scores are missing or stale
        (the ``loss`` scorer rescores every epoch, the others once)."""
        sampler, trainer = self.sampler, self.trainer
        if sampler is None:
            raise WorkbenchError("data.curriculum: no training sampler yet (call train_dataloader)")
        scorer = SCORERS[sampler.config.scorer]
        stale = scorer.every_epoch and sampler.scored_epoch != sampler.epoch
        if sampler.scores is not None and not stale:
            return
        context = self._context
        if scorer.needs_trainer:
            context = replace(context, model=trainer.lightning_module, strategy=trainer.strategy)
        scores = score(sampler.config.scorer, self.datasets["train"], context)
        sampler.set_scores(scores, sampler.epoch)

    def state_dict(self) -> dict[str, Any]:
        if self.sampler is not None:
            return self.sampler.state_dict()
        return dict(self._restored or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict) or None
