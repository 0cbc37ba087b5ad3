"""The conditional VAE: training improves the bound, sampling is deterministic and checked,
checkpoints round-trip, and the CLI run writes sample grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from tests.generative.conftest import tiny_trainer
from workbench.checkpoint import load_module
from workbench.errors import WorkbenchError
from workbench.generative.vae import ConditionalVAE


def _vae(**kwargs) -> ConditionalVAE:
    torch.manual_seed(0)
    return ConditionalVAE(image_size=8, latent_dim=4, width=8, sigma=0.3, **kwargs)


def _val_batch(datamodule) -> dict[str, torch.Tensor]:
    datamodule.setup("fit")
    return next(iter(datamodule.val_dataloader()))


def test_training_raises_the_elbo_and_checkpoints_round_trip(digits8, tmp_path):
    model = _vae(lr=3e-3)
    batch = _val_batch(digits8)
    before = model.elbo(batch["image"], batch["label"]).mean()
    trainer = tiny_trainer(40)
    trainer.fit(model, digits8)
    after = model.elbo(batch["image"], batch["label"]).mean()
    assert after > before + 20  # nats per 8x8 image (about -58 untrained)

    path = tmp_path / "vae.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_module(path, ["vae"])
    assert isinstance(loaded, ConditionalVAE)
    np.testing.assert_array_equal(loaded.generate([0, 5, 9], 3), model.generate([0, 5, 9], 3))
    with pytest.raises(WorkbenchError, match="a vae checkpoint; this needs a gan"):
        load_module(path, ["gan"])


def test_generate_is_deterministic_in_the_seed_and_restores_training_mode():
    model = _vae().train()
    images = model.generate([0, 1, 2, 2], seed=7)
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate([0, 1, 2, 2], seed=7))
    assert not np.array_equal(images, model.generate([0, 1, 2, 2], seed=8))
    assert model.training
    assert model.generate([], seed=0).shape == (0, 8, 8, 1)


def test_unknown_class_names_the_label_and_the_known_classes():
    model = _vae(num_classes=3, class_names=["cat", "dog", "owl"])
    with pytest.raises(WorkbenchError, match=r"label 3: .*0=cat, 1=dog, 2=owl"):
        model.generate([0, 3], seed=0)
    with pytest.raises(WorkbenchError, match="label -1"):
        model.interpolate(-1, 4, seed=0)


def test_elbo_is_deterministic_per_example_and_importance_weighting_tightens_it(digits8):
    model = _vae()
    batch = _val_batch(digits8)
    images, labels = batch["image"][:16], batch["label"][:16]
    elbo = model.elbo(images, labels, seed=1)
    assert elbo.shape == (16,) and torch.isfinite(elbo).all()
    torch.testing.assert_close(elbo, model.elbo(images, labels, seed=1))
    single = model.elbo(images, labels, samples=1, importance_weighted=True)
    many = model.elbo(images, labels, samples=32, importance_weighted=True)
    assert many.mean() > single.mean()
    with pytest.raises(WorkbenchError, match="VAE trained on 1 x 8 x 8 images, got 1 x 16 x 16"):
        model.elbo(torch.rand(2, 1, 16, 16), labels[:2])


def test_interpolation_moves_smoothly_between_two_prior_samples():
    frames = _vae().interpolate(4, steps=6, seed=0)
    assert frames.shape == (6, 8, 8, 1)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert steps.max() < np.abs(frames[-1] - frames[0]).mean()


def test_image_size_must_be_a_power_of_two():
    with pytest.raises(WorkbenchError, match="model.image_size: .* got 12"):
        ConditionalVAE(image_size=12)


def test_cli_fit_writes_sample_grids_and_a_vae_checkpoint(tmp_path):
    root = tmp_path / "runs"
    run_cli("fit", "-c", "configs/vae_digits.yaml", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(root))  # fmt: skip
    run = root / "vae_digits"
    for folder in ("samples", "interpolations"):
        (png,) = (run / "version_0" / folder).glob("epoch_000.png")
        assert Image.open(png).size[0] > 100
    model = load_module(run / "checkpoints" / "last.ckpt", ["vae"])
    assert model.generate(list(range(10)), 0).shape == (10, 16, 16, 1)
