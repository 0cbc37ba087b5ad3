"""The SimGAN-style refiner: it keeps rendered digits in place while its patch discriminator
learns to tell refined from natural images; history buffer, size checks and checkpoints."""

from __future__ import annotations

import pytest
import torch

from tests.generative.conftest import tiny_trainer
from workbench.checkpoint import load_module
from workbench.data.datamodule import MixedDataModule
from workbench.errors import WorkbenchError
from workbench.generative.refiner import Refiner

SOURCES = ["natural", "rendered"]


@pytest.fixture
def mixed16(rendered_dir) -> MixedDataModule:
    """Natural digits and the session's rendered digits, grey 16 x 16, as many of each."""
    rendered = {"kind": "rendered", "path": str(rendered_dir), "name": "rendered"}
    return MixedDataModule(
        [{"kind": "digits", "name": "natural"}, rendered], image_size=16, batch_size=32
    )


def _refiner(**kwargs) -> Refiner:
    torch.manual_seed(0)
    options = {"image_size": 16, "source_names": SOURCES, "width": 8, "blocks": 2,
               "disc_width": 8, "history_size": 64, **kwargs}  # fmt: skip
    return Refiner(**options)


def _d_accuracy(trainer, model, datamodule) -> float:
    (metrics,) = trainer.validate(model, datamodule, verbose=False)
    return (metrics["val/d_acc_natural"] + metrics["val/d_acc_refined"]) / 2


def test_refiner_keeps_the_digit_while_the_discriminator_learns(mixed16, tmp_path):
    model = _refiner(lr_d=3e-3, self_reg=5.0)
    trainer = tiny_trainer(60, limit_val_batches=None)  # 30 refiner and 30 discriminator steps
    before = _d_accuracy(trainer, model, mixed16)
    trainer.fit(model, mixed16)
    after = _d_accuracy(trainer, model, mixed16)
    assert after > max(before, 0.5) + 0.15, (before, after)

    rendered = torch.stack([mixed16.datasets["val"][i]["image"] for i in range(-4, 0)])
    refined = model.refine(rendered)
    assert refined.shape == rendered.shape
    assert 0 < (refined - rendered).abs().mean() < 0.1
    assert int(model.history_count) > 0 and model.history.abs().sum() > 0

    path = tmp_path / "refiner.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_module(path, ["refiner"])
    torch.testing.assert_close(loaded.refine(rendered), refined)
    assert int(loaded.history_count) == int(model.history_count)


def test_an_untrained_refiner_is_nearly_the_identity():
    images = torch.rand(3, 1, 16, 16)
    refined = _refiner().refine(images)
    assert (refined - images.clamp(1e-3, 1 - 1e-3)).abs().max() < 1e-5


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 16, 16), (1, 16, 16)])
def test_images_of_another_size_are_refused_in_one_line(shape):
    with pytest.raises(WorkbenchError, match=r"^refiner trained on 1 x 16 x 16 images, got "):
        _refiner().refine(torch.rand(shape))


def test_source_names_must_name_data_sources():
    with pytest.raises(WorkbenchError, match="model.rendered_source: 'synthetic' is not a data"):
        _refiner(rendered_source="synthetic")
