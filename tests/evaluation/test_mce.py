"""mCE and relative mCE (Hendrycks and Dietterich 2019): the formulas on known numbers, and
``workbench robustness --baseline`` normalising a model by another on the same corrupted
images; a baseline of other classes is one line."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl

from tests.evaluation.conftest import train_tiny
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluation.mce import BENCHMARK, corruption_errors
from workbench.training.classifier import Classifier


def test_the_formulas_on_known_numbers():
    model = {"gaussian_noise": {"1": 0.8, "2": 0.6}, "speckle_noise": {"1": 0.5, "2": 0.5}}
    base = {"gaussian_noise": {"1": 0.6, "2": 0.4}, "speckle_noise": {"1": 0.5, "2": 0.5}}
    out = corruption_errors(model, 0.9, base, 0.8)
    gauss = out["per_corruption"]["gaussian_noise"]
    assert gauss["ce"] == pytest.approx((0.2 + 0.4) / (0.4 + 0.6))
    assert gauss["relative_ce"] == pytest.approx((0.1 + 0.3) / (0.2 + 0.4))
    assert out["per_corruption"]["speckle_noise"]["ce"] == pytest.approx(1.0)
    # speckle noise is an extra corruption: reported, not averaged
    assert out["counted"] == ["gaussian_noise"] and out["mce"] == pytest.approx(gauss["ce"])
    assert len(out["missing"]) == len(BENCHMARK) - 1
    with pytest.raises(WorkbenchError, match="the baseline makes no error under gaussian_noise"):
        corruption_errors(model, 0.9, {**base, "gaussian_noise": {"1": 1.0, "2": 1.0}}, 1.0)


def _save(model, path):
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def test_robustness_reports_mce_against_a_baseline(tiny_ckpt, tmp_path, capsys):
    weaker = _save(train_tiny(epochs=1), tmp_path / "weaker.ckpt")
    out = tmp_path / "report"
    args = ["robustness", "--ckpt", str(tiny_ckpt), "--data", "digits", "--out", str(out),
            "--budget", "quick", "--n", "64", "--eps", "0.05", "--attacks", "fgsm", "--quiet",
            "--corruptions", "gaussian_noise,contrast,speckle_noise"]  # fmt: skip
    assert main([*args, "--baseline", str(weaker)]) == 0
    report = json.loads((out / "report.json").read_text())
    mce = report["mce"]
    assert mce["baseline"] == str(weaker) and mce["counted"] == ["gaussian_noise", "contrast"]
    expected = corruption_errors(
        report["corruptions"], report["clean_acc"], mce["baseline_corruptions"],
        mce["baseline_clean_acc"],
    )  # fmt: skip
    assert mce["mce"] == pytest.approx(expected["mce"]) and mce["mce"] > 0
    assert "Corruption error normalised by the baseline" in (out / "report.html").read_text()
    # the model normalised by itself: every CE is exactly 1
    again = tmp_path / "self"
    assert main([*args[:6], str(again), *args[7:], "--baseline", str(tiny_ckpt)]) == 0
    itself = json.loads((again / "report.json").read_text())["mce"]
    assert all(v["ce"] == pytest.approx(1.0) for v in itself["per_corruption"].values())

    other = Classifier(backbone="small_cnn", backbone_options={"width": 4, "depth": 1},
                       image_size=8, in_channels=1, num_classes=3,
                       class_names=["a", "b", "c"])  # fmt: skip
    capsys.readouterr()
    assert main([*args[:6], str(tmp_path / "x"), *args[7:], "--baseline",
                 str(_save(other, tmp_path / "other.ckpt"))]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained on classes ['a', 'b', 'c'] but the model" in err
    assert not (tmp_path / "x" / "report.json").exists()


def test_imagenet_c_parameters_on_small_images_is_one_line_before_any_work(tiny_ckpt, tmp_path,
                                                                           capsys):
    out = tmp_path / "report"
    args = ["robustness", "--ckpt", str(tiny_ckpt), "--data", "digits", "--out", str(out),
            "--budget", "quick", "--n", "8", "--eps", "0.05", "--attacks", "fgsm", "--quiet",
            "--corruptions", "frost", "--corruption-parameters", "imagenet_c"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the table needs 32 or more; use cifar10c" in err
    assert not (out / "units").exists() and not (out / "report.json").exists()
    assert main([*args[:-1], "cifar10c"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["corruption_parameters"] == "cifar10c"
    assert "CIFAR-10-C&#x27;s parameters" in (out / "report.html").read_text()
