"""Adversarial training of the classifier: option checks, PGD batches and TRADES examples inside
the ball, robust accuracy through the CLI, and PGD training that really buys robustness."""

from __future__ import annotations

import csv

import pytest
import pytorch_lightning as pl
import torch

from tests.conftest import run_cli
from workbench.adversarial.attacks import build_attack
from workbench.adversarial.threat import ThreatModel
from workbench.checkpoint import load_module
from workbench.data.datamodule import MixedDataModule
from workbench.errors import WorkbenchError
from workbench.training.adversarial import AdversarialConfig, AdversarialTraining, trades_loss
from workbench.training.classifier import Classifier

TINY = ("--model.init_args.backbone", "small_cnn",
        "--model.init_args.backbone_options", "{width: 8, depth: 2}",
        "--data.init_args.epoch_size", "128", "--trainer.max_epochs", "1",
        "--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false")  # fmt: skip


def _model(**adversarial) -> Classifier:
    return Classifier(
        image_size=8,
        backbone="small_cnn",
        backbone_options={"width": 4, "depth": 1},
        adversarial=adversarial or None,
    )


def test_trades_loss_is_zero_for_equal_logits_and_positive_otherwise():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)) * 5
    assert trades_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    moved = trades_loss(logits, logits.roll(1, dims=1))
    assert torch.isfinite(moved) and moved.item() > 0.1
    huge = trades_loss(logits * 1e4, -logits * 1e4)
    assert torch.isfinite(huge)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"method": "fgsm"}, "method"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 2.0}, "eps"),
        ({"val_eps": -1}, "val_eps"),
        ({"steps": 0}, "steps"),
        ({"mix": 1.5}, "mix"),
        ({"method": "trades", "mix": 0.5}, "mix"),
        ({"beta": -1.0}, "beta"),
        ({"step_size": 0}, "step_size"),
        ({"ramp_epochs": -2}, "ramp_epochs"),
        ({"epsilon": 0.1}, "epsilon"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(WorkbenchError, match=f"model.adversarial.*{field}") as caught:
        _model(**options)
    assert "\n" not in str(caught.value)


def test_the_library_names_the_bare_field_and_the_caller_adds_its_prefix():
    with pytest.raises(WorkbenchError, match=r"^eps: an L-inf radius in \(0, 1\]"):
        AdversarialConfig.from_dict({"eps": 2.0})
    with pytest.raises(WorkbenchError, match=r"^x\.epsilon: not an option; allowed: method, eps"):
        AdversarialConfig.from_dict({"epsilon": 0.1}, "x")
    with pytest.raises(WorkbenchError, match=r"^model\.adversarial: must be a mapping"):
        Classifier(image_size=8, backbone="small_cnn", adversarial=[0.1])


def test_pgd_batch_replaces_the_mix_fraction_inside_the_ball_and_keeps_train_mode():
    model = _model(method="pgd", eps=0.1, steps=3, mix=0.5)
    model.train()
    bn = dict(model.named_buffers())
    before = {k: v.clone() for k, v in bn.items() if "running" in k}
    image = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    label = torch.arange(8) % 10
    mixed = model.adversarial.pgd_batch(model, image, label, epoch=0, seed=0)
    assert torch.equal(mixed[4:], image[4:])
    assert not torch.equal(mixed[:4], image[:4])
    assert (mixed[:4] - image[:4]).abs().max() <= 0.1 + 1e-6
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], dict(model.named_buffers())[k]) for k in before)
    again = model.adversarial.pgd_batch(model, image, label, epoch=0, seed=0)
    assert torch.equal(again, mixed)  # seeded random start: reproducible steps


def test_trades_examples_stay_in_the_ball_and_move_the_prediction():
    model = _model(method="trades", eps=0.2, steps=5).eval()
    image = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    x_adv = model.adversarial.trades_examples(model, image, epoch=0, seed=0)
    assert (x_adv - image).abs().max() <= 0.2 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    # the inner maximisation beats a random point of the same ball (a KL of zero proves nothing)
    noise = (torch.rand(image.shape, generator=torch.Generator().manual_seed(3)) * 2 - 1) * 0.2
    with torch.no_grad():
        clean, adv = model(image)["logits"], model(x_adv)["logits"]
        random = model((image + noise).clamp(0, 1))["logits"]
    assert trades_loss(clean, adv).item() > trades_loss(clean, random).item() > 0


def test_eps_ramps_from_start_epoch():
    training = AdversarialTraining(AdversarialConfig(eps=0.2, start_epoch=2, ramp_epochs=4))
    assert not training.trains(1) and training.trains(2)
    assert [training.eps_at(e) for e in (2, 3, 5, 9)] == pytest.approx([0.05, 0.1, 0.2, 0.2])


def test_robust_examples_work_under_inference_mode():
    model = _model(method="none", val_eps=0.1, val_steps=3).eval()
    image = torch.rand(4, 1, 8, 8)
    with torch.inference_mode():
        x_adv = model.adversarial.robust_examples(model, image, torch.arange(4), seed=0)
    assert not torch.equal(x_adv, image) and (x_adv - image).abs().max() <= 0.1 + 1e-6


def test_fit_through_the_cli_logs_robust_accuracy_and_reloads(tmp_path):
    run_cli("fit", "-c", "configs/adversarial_digits.yaml", *TINY,
            "--trainer.default_root_dir", str(tmp_path))  # fmt: skip
    run = tmp_path / "adversarial_digits"
    (metrics,) = run.glob("version_0/metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    robust = [float(r["val/robust_acc/natural"]) for r in rows if r.get("val/robust_acc/natural")]
    clean = [float(r["val/acc/natural"]) for r in rows if r.get("val/acc/natural")]
    assert robust and clean and 0 <= robust[-1] <= 1
    assert any(r.get("train/adv_eps") for r in rows)
    model = load_module(run / "checkpoints" / "last.ckpt", ["classifier"])
    assert model.adversarial.config.method == "pgd" and model.adversarial.config.eps == 0.1


def test_trades_step_adds_the_weighted_divergence():
    pl.seed_everything(0, verbose=False)
    data = MixedDataModule([{"kind": "digits"}], image_size=8, batch_size=16)
    model = _model(method="trades", eps=0.1, steps=2, beta=6.0, val_steps=2)
    trainer = pl.Trainer(fast_dev_run=2, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    trainer.fit(model, data)
    logged = trainer.callback_metrics
    assert logged["train/trades_loss"] > 0
    expected = logged["train/cls_loss"] + 6.0 * logged["train/trades_loss"]
    assert logged["train/total_loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert 0 <= logged["val/robust_acc/all"] <= logged["val/acc/all"] + 1e-6


def _fit_and_attack(adversarial: dict | None) -> tuple[float, float]:
    pl.seed_everything(0, verbose=False)
    data = MixedDataModule(
        [{"kind": "digits"}], image_size=8, channels=1, batch_size=64, epoch_size=768
    )
    model = Classifier(image_size=8, backbone="small_cnn", lr=0.01, adversarial=adversarial,
                       backbone_options={"width": 16, "depth": 2})  # fmt: skip
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)  # fmt: skip
    trainer.fit(model, data)
    data.setup("test")
    test = data.datasets["test"]
    x = torch.stack([test[i]["image"] for i in range(len(test))])
    y = torch.stack([test[i]["label"] for i in range(len(test))])
    model.eval()
    x_adv = build_attack("pgd", model, ThreatModel("linf", 0.1), steps=10)(x, y)
    with torch.no_grad():
        clean = (model(x)["logits"].argmax(1) == y).float().mean().item()
        robust = (model(x_adv)["logits"].argmax(1) == y).float().mean().item()
    return clean, robust


def test_pgd_training_buys_robust_accuracy_on_tiny_digits():
    standard_clean, standard_robust = _fit_and_attack(None)
    pgd_clean, pgd_robust = _fit_and_attack({"method": "pgd", "eps": 0.1, "steps": 3,
                                             "val_steps": 0})  # fmt: skip
    assert standard_clean > 0.85 and pgd_clean > 0.8
    assert pgd_robust > standard_robust + 0.15, (standard_robust, pgd_robust)
