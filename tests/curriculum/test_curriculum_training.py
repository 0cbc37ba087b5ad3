"""The curriculum in real Trainer runs: logged pool growth, self-paced rescoring, the teacher
scorer, exact resume from a checkpoint, and the self-paced loss option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from tests.conftest import ROOT
from tests.curriculum.ddp_scores import CURRICULUM
from workbench.curriculum import (
    Curriculum,
    CurriculumConfig,
    CurriculumDataModule,
    CurriculumSampler,
    ScoreContext,
    item_losses,
)
from workbench.data.datamodule import MixedDataModule
from workbench.errors import WorkbenchError
from workbench.training.callbacks import EpochSeed
from workbench.training.classifier import Classifier


class Probe(pl.Callback):
    """Records, per epoch, the sampler's scores at the epoch start and the logged metrics."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.scores: dict[int, np.ndarray] = {}
        self.scored_epoch: dict[int, int] = {}
        self.logged: dict[int, dict[str, float]] = {}

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        if not isinstance(sampler, CurriculumSampler):
            return
        self.scores[trainer.current_epoch] = sampler.scores.copy()
        self.scored_epoch[trainer.current_epoch] = sampler.scored_epoch

    def on_train_epoch_end(self, trainer, pl_module):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.logged[trainer.current_epoch] = metrics
        if self.stop_after is not None and trainer.current_epoch + 1 >= self.stop_after:
            trainer.should_stop = True  # an interruption after this epoch's checkpoint


def fit(
    curriculum: dict | None,
    epochs: int = 3,
    num_workers: int = 0,
    probe: Probe | None = None,
    checkpoints=None,
    ckpt_path: str | None = None,
    **model_options,
) -> tuple[Classifier, MixedDataModule, Probe]:
    pl.seed_everything(3)
    options = dict(
        sources=[{"kind": "digits", "name": "natural"}],
        image_size=16,
        batch_size=32,
        epoch_size=256,
        num_workers=num_workers,
    )
    if curriculum is None:
        dm = MixedDataModule(**options)
    else:
        dm = CurriculumDataModule(curriculum=curriculum, **options)
    model = Classifier(
        num_classes=10,
        in_channels=1,
        image_size=16,
        backbone="small_cnn",
        backbone_options={"width": 8, "depth": 2},
        lr=0.01,
        **model_options,
    )
    probe = probe or Probe()
    callbacks = [*([Curriculum()] if curriculum is not None else []), EpochSeed(), probe]
    if checkpoints is not None:
        callbacks.append(
            ModelCheckpoint(dirpath=checkpoints, save_last=True, save_on_train_epoch_end=True)
        )
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=checkpoints is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return model, dm, probe


def pool_sizes(probe: Probe) -> list[float]:
    return [probe.logged[e]["curriculum/pool_size"] for e in sorted(probe.logged)]


def test_trainer_run_logs_a_growing_pool():
    _, dm, probe = fit({"scorer": "random", "start": 0.2, "full_at": 1.0})
    train = len(dm.datasets["train"])
    assert pool_sizes(probe) == [np.ceil(f * train) for f in (0.2, 0.2 + 0.8 / 3, 0.2 + 1.6 / 3)]
    thresholds = [probe.logged[e]["curriculum/threshold"] for e in range(3)]
    assert thresholds[0] < thresholds[1] < thresholds[2] < 1  # easy_first: the cut-off rises


def test_loss_scorer_rescores_with_the_current_model_every_epoch():
    class Check(Probe):
        def on_train_epoch_start(self, trainer, pl_module):
            super().on_train_epoch_start(trainer, pl_module)
            dataset = trainer.datamodule.datasets["train"]
            now = item_losses(pl_module, dataset, ScoreContext(["natural"], ["digits"]))
            np.testing.assert_allclose(self.scores[trainer.current_epoch], now, rtol=1e-5)

    _, _, probe = fit({"scorer": "loss", "start": 0.3, "full_at": 1.0}, probe=Check())
    assert probe.scored_epoch == {0: 0, 1: 1, 2: 2}
    assert not np.allclose(probe.scores[0], probe.scores[2])
    assert pool_sizes(probe)[0] < pool_sizes(probe)[2]


def test_loss_scorer_without_the_callback_is_one_clear_error():
    dm = CurriculumDataModule(
        sources=[{"kind": "digits"}], image_size=16, curriculum={"scorer": "loss"}
    )
    model = Classifier(image_size=16, backbone="small_cnn", backbone_options={"width": 8})
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False)
    with pytest.raises(WorkbenchError, match="needs the Curriculum callback"):
        trainer.fit(model, dm)


def test_teacher_scores_once_and_resume_needs_no_teacher(tmp_path):
    teacher, _, _ = fit({"scorer": "random"}, epochs=1, checkpoints=tmp_path / "teacher")
    path = tmp_path / "teacher" / "last.ckpt"
    curriculum = {"scorer": "teacher", "teacher_checkpoint": str(path), "full_at": 1.0}
    student = tmp_path / "student"
    _, dm, probe = fit(curriculum, epochs=3, probe=Probe(stop_after=2), checkpoints=student)
    assert probe.scored_epoch == {0: 0, 1: 0}  # computed once
    expected = item_losses(teacher, dm.datasets["train"], ScoreContext(["natural"], ["digits"]))
    np.testing.assert_allclose(probe.scores[0], expected, rtol=1e-5)
    path.unlink()
    _, _, resumed = fit(curriculum, epochs=3, ckpt_path=str(student / "last.ckpt"))
    assert list(resumed.scores) == [2] and np.array_equal(resumed.scores[2], probe.scores[0])


LOSS_CURRICULUM = {"scorer": "loss", "start": 0.25, "full_at": 0.75, "pacing": "root"}


@pytest.mark.parametrize(
    "curriculum, num_workers",
    [(LOSS_CURRICULUM, 0), (LOSS_CURRICULUM, 1), (None, 1)],
    ids=["curriculum", "curriculum-workers", "plain-workers"],
)
def test_resume_from_a_checkpoint_continues_the_schedule_exactly(tmp_path, curriculum, num_workers):
    # with workers the first epoch's items are drawn before any epoch hook runs
    straight, _, expected = fit(curriculum, epochs=4, num_workers=num_workers)
    fit(curriculum, 4, num_workers, Probe(stop_after=2), checkpoints=tmp_path)
    resumed, _, probe = fit(curriculum, 4, num_workers, ckpt_path=str(tmp_path / "last.ckpt"))
    assert sorted(probe.logged) == [2, 3]
    if curriculum is not None:
        assert pool_sizes(probe) == pool_sizes(expected)[2:]
        assert pool_sizes(probe)[0] < pool_sizes(probe)[1]
        for epoch in (2, 3):
            np.testing.assert_array_equal(probe.scores[epoch], expected.scores[epoch])
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_self_paced_option_keeps_more_samples_as_the_threshold_grows():
    # lambda 2, 6, 18 nats: about ln 10 at first, then above every loss
    _, _, probe = fit({"scorer": "random", "start": 1.0}, self_paced=2.0, self_paced_growth=3.0)
    kept = [probe.logged[e]["train/kept_fraction"] for e in range(3)]
    assert kept[0] < kept[1] < kept[2] == 1.0


def test_ddp_ranks_hold_the_same_loss_scores_and_draw_disjoint_shares(tmp_path):
    script = Path(__file__).with_name("ddp_scores.py")
    subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, check=True, timeout=300)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    dm = CurriculumDataModule(sources=[{"kind": "digits"}], epoch_size=256, curriculum=CURRICULUM)
    dm.setup("fit")
    labels, config = dm.datasets["train"].labels(), CurriculumConfig.from_dict(CURRICULUM)
    for epoch, (zero, one) in enumerate(zip(*ranks, strict=True)):
        assert zero["scores"] == one["scores"] and zero["pool_size"] == one["pool_size"]
        single = CurriculumSampler(
            np.ones(len(labels)), 256, 0, 2, config, labels, scores=zero["scores"]
        )
        single.set_epoch(epoch)
        full = list(single)
        assert zero["draws"] == full[0::2] and one["draws"] == full[1::2]
