"""AutoAttack's versions as cascade presets (standard, plus, rand), target classes capped, and
``workbench robustness`` end to end on models with 2 and 3 classes."""

import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from workbench.adversarial.threat import ThreatModel
from workbench.cli import main
from workbench.data.sources import DigitsSource
from workbench.errors import WorkbenchError
from workbench.evaluation.cascade import autoattack_stages, cascade_stages, run_cascade
from workbench.evaluation.runner import make_settings
from workbench.evaluation.settings import RobustnessOptions
from workbench.training.classifier import Classifier


def test_standard_is_autoattacks_standard_version():
    stages = cascade_stages("standard")
    assert [s.label for s in stages] == ["apgd-ce", "apgd-dlr-t", "fab-t", "square"]
    assert stages[0].options == {"steps": 100, "restarts": 1}
    for targeted in stages[1:3]:
        assert targeted.options == {"steps": 100, "restarts": 1, "target_classes": 9}
    assert stages[3].options == {"queries": 5000}
    assert autoattack_stages() == stages


def test_plus_adds_restarts_and_untargeted_versions():
    stages = cascade_stages("plus")
    assert [s.label for s in stages] == ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-dlr-t",
                                         "fab-t"]  # fmt: skip
    assert [s.options.get("restarts") for s in stages] == [5, 5, 5, None, 1, 1]
    assert stages[3].options == {"queries": 5000}
    assert {s.options.get("target_classes") for s in stages[4:]} == {9}


def test_rand_averages_gradients_over_draws():
    stages = cascade_stages("rand")
    assert [s.label for s in stages] == ["apgd-ce", "apgd-dlr"]
    assert all(s.options == {"steps": 100, "restarts": 1, "eot_iter": 20} for s in stages)


@pytest.mark.parametrize("classes, targets", [(2, 1), (3, 2), (10, 9), (100, 9)])
def test_target_classes_are_capped_at_classes_minus_one(classes, targets):
    for preset in ("standard", "plus"):
        stages = cascade_stages(preset, num_classes=classes)
        assert {s.options["target_classes"] for s in stages if s.targeted} == {targets}


def test_unknown_preset_is_one_line():
    # the library names the parameter; the CLI its flag
    message = "cascade: unknown 'fast'; allowed: standard, plus, rand"
    with pytest.raises(WorkbenchError, match=f"^{message}$"):
        cascade_stages("fast")
    with pytest.raises(WorkbenchError, match=f"^{message}$"):
        make_settings(cascade="fast")
    with pytest.raises(WorkbenchError, match=f"^--{message}$"):
        RobustnessOptions.from_dict({"cascade": "fast"}, prefix="--")


@pytest.mark.parametrize("preset", ["standard", "plus", "rand"])
def test_every_preset_runs_on_a_three_class_model(preset):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    x = torch.rand(24, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = ThreatModel("linf", 0.05)
    stages = cascade_stages(preset, steps=5, queries=20, num_classes=3)
    result = run_cascade(model, x, y, threat, stages)
    assert [s["stage"] for s in result.stages] == [s.label for s in stages]
    assert result.stages[0]["attacked"] == len(x) and 0 < result.accuracy < 1
    assert (threat.distance(result.x_adv, x) <= 0.05 + 1e-6).all()


def _few_class_checkpoint(folder, classes: int):
    """Trains a tiny CNN on the digits 0 .. classes - 1 and writes an ImageFolder of the test
    digits of those classes; returns (checkpoint, data folder)."""
    torch.manual_seed(0)
    train = DigitsSource("train")
    keep = [i for i in range(len(train)) if train.labels()[i] < classes]
    x = torch.stack([torch.from_numpy(train[i]["image"]).permute(2, 0, 1) for i in keep])
    y = torch.from_numpy(train.labels()[keep])
    model = Classifier(num_classes=classes, backbone="small_cnn", image_size=8, in_channels=1,
                       backbone_options={"width": 8, "depth": 2})  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(4):
        for start in range(0, len(x), 64):
            loss = F.cross_entropy(model(x[start : start + 64])["logits"], y[start : start + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    ckpt = folder / "model.ckpt"
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model.eval())
    trainer.save_checkpoint(ckpt)
    test = DigitsSource("test")
    data = folder / "data"
    for index in range(len(test)):
        label = int(test.labels()[index])
        if label < classes:
            (data / str(label)).mkdir(parents=True, exist_ok=True)
            pixels = (test[index]["image"][..., 0] * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(data / str(label) / f"{index:04d}.png")
    return ckpt, data


@pytest.mark.parametrize("classes", [2, 3])
def test_models_with_few_classes_are_evaluated_end_to_end(tmp_path, classes):
    ckpt, data = _few_class_checkpoint(tmp_path, classes)
    out = tmp_path / "report"
    assert main(["robustness", "--ckpt", str(ckpt), "--data", str(data), "--out", str(out),
                 "--budget", "quick", "--n", "24", "--eps", "0.1,0.3", "--corruptions", "none",
                 "--quiet"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["num_classes"] == classes and report["target_classes"] == classes - 1
    assert report["cascade_preset"] == "standard"
    for stages in report["cascade"].values():
        assert [s["stage"] for s in stages] == ["apgd-ce", "apgd-dlr-t", "fab-t", "square"]
    assert report["worst_case_acc"]["0.3"] < report["clean_acc"]
    fallback = (
        "targeted APGD-DLR uses the targeted cross-entropy loss: the targeted DLR loss needs at "
        f"least 4 classes, the model has {classes}"
    )
    capped = f"target classes capped at {classes - 1}: the model has {classes} classes"
    assert report["cascade_notes"] == [capped, fallback]
    page = (out / "report.html").read_text()
    assert "Departures from AutoAttack" in page and "targeted cross-entropy loss" in page


def test_plus_on_a_two_class_model_says_dlr_gave_way(tmp_path):
    ckpt, data = _few_class_checkpoint(tmp_path, 2)
    out = tmp_path / "report"
    assert main(["robustness", "--ckpt", str(ckpt), "--data", str(data), "--out", str(out),
                 "--budget", "quick", "--n", "16", "--eps", "0.2", "--corruptions", "none",
                 "--cascade", "plus", "--quiet"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["cascade_stages"] == ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-dlr-t",
                                        "fab-t"]  # fmt: skip
    assert report["settings"]["cascade"] == "plus"
    assert (
        "APGD-DLR uses the cross-entropy loss: the DLR loss needs at least 3 classes, the model "
        "has 2" in report["cascade_notes"]
    )
