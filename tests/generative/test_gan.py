"""The conditional GAN: both objectives step the critic and the generator, the EMA generator is
what sampling uses, sampling is deterministic and checked, and checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.generative.conftest import tiny_trainer
from workbench.checkpoint import load_module
from workbench.errors import WorkbenchError
from workbench.generative.gan import ConditionalGAN
from workbench.generative.nets import latents


def _gan(**kwargs) -> ConditionalGAN:
    torch.manual_seed(0)
    options = {"image_size": 8, "latent_dim": 8, "width": 8, "ema_decay": 0.9, **kwargs}
    return ConditionalGAN(**options)


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _moved(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize(
    ("objective", "spectral_norm", "n_critic"), [("hinge", True, 1), ("wgan-gp", False, 2)]
)
def test_objectives_step_both_networks(digits8, objective, spectral_norm, n_critic):
    model = _gan(objective=objective, spectral_norm=spectral_norm, n_critic=n_critic)
    generator, critic = _snapshot(model.generator), _snapshot(model.critic)
    trainer = tiny_trainer(6)  # counts the steps of both optimisers
    trainer.fit(model, digits8)
    assert _moved(generator, model.generator) and _moved(critic, model.critic)
    metrics = trainer.logged_metrics
    assert torch.isfinite(metrics["train/d_loss"]) and torch.isfinite(metrics["train/g_loss"])
    assert ("train/gp" in metrics) == (objective == "wgan-gp")
    g_steps = model.optimizers()[0].optimizer.state_dict()["state"][0]["step"]
    d_steps = model.optimizers()[1].optimizer.state_dict()["state"][0]["step"]
    assert d_steps == n_critic * g_steps


def test_generate_uses_the_moving_average_of_the_generator(digits8, tmp_path):
    model = _gan(lr_g=3e-3, lr_d=3e-3)
    trainer = tiny_trainer(20)
    trainer.fit(model, digits8)
    labels = torch.tensor([0, 3, 7])
    z = latents(3, 8, seed=5)
    model.eval()
    with torch.no_grad():
        raw = model.generator(z, labels).permute(0, 2, 3, 1).numpy()
        ema = model.generator_ema(z, labels).permute(0, 2, 3, 1).numpy()
    images = model.generate([0, 3, 7], seed=5)
    np.testing.assert_allclose(images, ema, atol=1e-6)
    assert np.abs(images - raw).mean() > 1e-3

    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_module(path, ["gan"])
    np.testing.assert_array_equal(loaded.generate([0, 3, 7], seed=5), images)


def test_generate_is_deterministic_and_checks_labels():
    model = _gan(num_classes=2, class_names=["even", "odd"])
    images = model.generate([1, 0, 1], seed=2)
    assert images.shape == (3, 8, 8, 1) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate([1, 0, 1], seed=2))
    assert not np.array_equal(images, model.generate([1, 0, 1], seed=3))
    with pytest.raises(WorkbenchError, match=r"label 2: .*known classes: 0=even, 1=odd"):
        model.generate([2], seed=0)


def test_interpolation_decodes_a_line_between_two_latents_with_the_averaged_generator():
    model = _gan(num_classes=2, class_names=["even", "odd"])
    frames = model.interpolate(1, steps=5, seed=0)
    assert frames.shape == (5, 8, 8, 1)
    ends = latents(2, model.hparams.latent_dim, seed=0)
    with torch.no_grad():
        first = model.eval().generator_ema(ends[:1], torch.tensor([1]))  # the averaged generator
    np.testing.assert_allclose(frames[0], first[0].permute(1, 2, 0).numpy(), atol=1e-6)
    with pytest.raises(WorkbenchError, match="label 2"):
        model.interpolate(2, steps=3, seed=0)


@pytest.mark.parametrize(
    ("options", "field"),
    [({"objective": "vanilla"}, "model.objective"), ({"n_critic": 0}, "model.n_critic"),
     ({"ema_decay": 1.0}, "model.ema_decay"), ({"lr_d": -1.0}, "model.lr_d")],
)  # fmt: skip
def test_bad_options_name_the_field(options, field):
    with pytest.raises(WorkbenchError, match=field):
        _gan(**options)


def test_the_remedies_train_and_log_the_r1_penalty(digits8):
    model = _gan(diffaugment=True, r1_weight=1.0, minibatch_std=True)
    generator, critic = _snapshot(model.generator), _snapshot(model.critic)
    trainer = tiny_trainer(4)
    trainer.fit(model, digits8)
    assert _moved(generator, model.generator) and _moved(critic, model.critic)
    assert float(trainer.logged_metrics["train/r1"]) > 0


def test_diffaugment_is_random_per_image_and_passes_gradients():
    from workbench.generative.diff_augment import DiffAugment

    images = torch.full((4, 1, 8, 8), 0.5).requires_grad_(True)
    out = DiffAugment()(images)
    assert out.shape == images.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert not torch.equal(out[0], out[1])  # drawn per image
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_minibatch_std_sees_a_collapsed_batch():
    from workbench.generative.gan import MinibatchStd

    varied = torch.randn(8, 3, 4, 4)
    collapsed = varied[:1].repeat(8, 1, 1, 1)
    assert MinibatchStd()(varied).shape == (8, 4, 4, 4)
    assert float(MinibatchStd()(collapsed)[:, -1].max()) < 1e-3
    assert float(MinibatchStd()(varied)[:, -1].min()) > 0.1
    assert MinibatchStd()(torch.randn(6, 3, 4, 4)).shape == (6, 4, 4, 4)  # 6 is not 4k


def test_r1_weight_below_zero_is_refused():
    with pytest.raises(WorkbenchError, match="model.r1_weight: must be 0 .* got -1"):
        _gan(r1_weight=-1.0)
