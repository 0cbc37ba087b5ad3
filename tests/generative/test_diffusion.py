"""The class-conditional diffusion model: training steps, EMA sampling, classifier-free
guidance, SDEdit refining, checks of its options, and the Lightning CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from tests.generative.conftest import tiny_trainer
from workbench.checkpoint import load_module
from workbench.errors import WorkbenchError
from workbench.generative.diffusion import ConditionalDiffusion, SDEditRefiner

OPTIONS = {"image_size": 8, "widths": [8, 8], "attention": False, "train_steps": 20,
           "sample_steps": 5}  # fmt: skip


def _model(**kwargs) -> ConditionalDiffusion:
    torch.manual_seed(0)
    return ConditionalDiffusion(**{**OPTIONS, **kwargs})


@pytest.fixture(scope="module")
def trained():
    from workbench.data.datamodule import MixedDataModule

    data = MixedDataModule([{"kind": "digits", "name": "natural", "per_class": 3}],
                           image_size=8, channels=1, batch_size=16, epoch_size=32)  # fmt: skip
    model = _model(lr=3e-3, ema_decay=0.9)
    before = [p.detach().clone() for p in model.unet.parameters()]
    trainer = tiny_trainer(6)
    trainer.fit(model, data)
    moved = any(not torch.equal(a, b) for a, b in zip(before, model.unet.parameters(), strict=True))
    return model, trainer, moved


def test_training_steps_the_network_and_the_moving_average(trained):
    model, trainer, moved = trained
    assert moved and torch.isfinite(trainer.logged_metrics["train/loss"])
    raw = dict(model.unet.named_parameters())
    ema = dict(model.unet_ema.module.named_parameters())
    assert any(not torch.equal(raw[name], ema[name]) for name in raw)


def test_generate_is_deterministic_and_checks_labels(trained):
    model = trained[0]
    images = model.generate([0, 3, 9], seed=4)
    assert images.shape == (3, 8, 8, 1) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate([0, 3, 9], seed=4))
    assert not np.array_equal(images, model.generate([0, 3, 9], seed=5))
    with pytest.raises(WorkbenchError, match="label 10: the generator was not trained"):
        model.generate([10], seed=0)


def test_guidance_mixes_the_conditional_and_unconditional_predictions(trained):
    model = trained[0].eval()
    x, t, labels = torch.randn(2, 1, 8, 8), torch.tensor(7), torch.tensor([1, 2])
    with torch.no_grad():
        unconditional = model._epsilon(x, t, None, 1.0)
        conditional = model._epsilon(x, t, labels, 1.0)
        torch.testing.assert_close(model._epsilon(x, t, labels, 0.0), unconditional)
        guided = model._epsilon(x, t, labels, 3.0)
    torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional))
    assert not torch.allclose(conditional, unconditional)


def test_sdedit_keeps_more_of_the_image_at_lower_strength(trained):
    model = trained[0]
    images = torch.rand(6, 1, 8, 8)
    gentle = model.refine(images, 0.2, seed=1)
    strong = model.refine(images, 1.0, seed=1)
    assert gentle.shape == images.shape and 0 <= float(gentle.min()) <= float(gentle.max()) <= 1
    assert (gentle - images).abs().mean() < (strong - images).abs().mean()
    torch.testing.assert_close(gentle, model.refine(images, 0.2, seed=1))
    labelled = model.refine(images, 0.6, seed=1, labels=torch.arange(6))
    assert not torch.equal(labelled, model.refine(images, 0.6, seed=1))


def test_denoising_strip_runs_from_noise_to_the_sample(trained):
    strip = trained[0].denoising_strip(seed=0)
    assert strip.shape == (10, 6, 8, 8, 1)  # 5 sampling steps, then the sample
    # the first frame is the seed's initial noise, the last is what generate() returns
    noise = torch.randn((10, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    expected = ((noise.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(strip[:, 0], expected, atol=1e-6)
    np.testing.assert_allclose(strip[:, -1], trained[0].generate(list(range(10)), 0), atol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.refine(torch.rand(1, 1, 8, 8), 0.0, 0), r"--strength: must lie in \(0, 1\]"),
        (lambda m: m.refine(torch.rand(1, 1, 8, 8), 1.5, 0), r"--strength: must lie in \(0, 1\]"),
        (lambda m: m.refine(torch.rand(1, 1, 16, 16), 0.3, 0),
         "diffusion model trained on 1 x 8 x 8 images, got 1 x 16 x 16"),
        (lambda m: m.generate([0], 0, steps=21), r"--steps: DDIM steps must lie in \[1, 20\]"),
        (lambda m: m.generate([0], 0, guidance=-0.5), "--guidance: the guidance scale must be 0"),
        (lambda m: SDEditRefiner(_model(conditional=False), 0.3, conditioned=True),
         "--conditioned: this diffusion model was trained without labels"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line(trained, call, message):
    with pytest.raises(WorkbenchError, match=message):
        call(trained[0])


def test_bad_construction_is_refused():
    with pytest.raises(WorkbenchError, match=r"model.image_size: 12 is not divisible by 2\^3"):
        ConditionalDiffusion(image_size=12, widths=[8, 8, 8, 8])
    with pytest.raises(WorkbenchError, match="model.beta_schedule: 'cubic'"):
        _model(beta_schedule="cubic")
    with pytest.raises(WorkbenchError, match="model.label_dropout"):
        _model(label_dropout=1.0)


def test_cli_fit_writes_grids_strips_and_a_diffusion_checkpoint(tmp_path):
    root = tmp_path / "runs"
    run_cli("fit", "-c", "configs/diffusion_digits.yaml", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--model.widths", "[8, 8]",
            "--model.attention", "false", "--model.sample_steps", "3",
            "--trainer.default_root_dir", str(root))  # fmt: skip
    run = root / "diffusion_digits"
    for folder in ("samples", "denoising"):
        (png,) = (run / "version_0" / folder).glob("epoch_000.png")
        assert Image.open(png).size[0] > 100
    model = load_module(run / "checkpoints" / "last.ckpt", ["diffusion"])
    assert model.generate(list(range(10)), 0).shape == (10, 16, 16, 1)
    assert model.hparams.widths == [8, 8]


def test_a_diffusion_checkpoint_is_not_a_classifier(tmp_path, capsys):
    from tests.generative.tiny_models import fit_tiny
    from workbench.cli import main

    checkpoint = fit_tiny("diffusion", tmp_path / "diffusion.ckpt")
    out = tmp_path / "report"
    args = ["robustness", "--ckpt", str(checkpoint), "--data", "digits", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "diffusion.ckpt: a diffusion checkpoint; this needs a classifier checkpoint" in err


def test_sdedit_at_full_strength_starts_from_noise(trained):
    model = trained[0].eval()
    white = torch.ones(8, 1, 8, 8)  # a flat image: any spread in x_T comes from the noise
    with torch.no_grad():
        _, path = model._denoise(white, None, 5, 1.0, 1.0, torch.Generator().manual_seed(0), 1)
    assert 0.7 < float(path[0].std()) < 1.3 and abs(float(path[0].mean())) < 0.5
    with torch.no_grad():
        _, path = model._denoise(white, None, 5, 1.0, 0.2, torch.Generator().manual_seed(0), 1)
    assert float(path[0].mean()) > 0.5  # at 0.2 the image still dominates
