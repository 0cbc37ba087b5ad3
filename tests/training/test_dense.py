"""The dense LightningModule: outputs of each task and backbone, losses that learn, one-line
errors for bad options and unlabelled data, and a real fit / test / predict of rendered streets
through the CLI with per-condition metrics, overlays and dense prediction files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import dense_squares, run_cli, street_config
from workbench.checkpoint import checkpoint_kind, read_checkpoint
from workbench.errors import WorkbenchError
from workbench.training.dense import DenseModule

CLASSES = ["road", "car"]
SIZE = 16


def _module(**options) -> DenseModule:
    torch.manual_seed(0)
    defaults = {
        "num_classes": 2,
        "in_channels": 3,
        "image_size": SIZE,
        "class_names": CLASSES,
        "backbone": "unet",
        "backbone_options": {"width": 8, "depth": 2},
        "overlays": 0,
    }
    return DenseModule(**{**defaults, **options})


@pytest.mark.parametrize("backbone", ["unet", "fpn", "resnet"])
@pytest.mark.parametrize("task", ["segmentation", "depth", "both"])
def test_outputs_have_the_image_size(task, backbone):
    options = {
        "unet": {"width": 8, "depth": 2},
        "fpn": {"width": 8, "depth": 2, "stages": 2},
        "resnet": {"width": 8, "depth": 2, "stages": 2},
    }[backbone]
    model = _module(task=task, backbone=backbone, backbone_options=options).eval()
    out = model(torch.rand(2, 3, SIZE, SIZE))
    assert set(out) == {"segmentation": {"seg"}, "depth": {"depth"}, "both": {"seg", "depth"}}[task]
    if "seg" in out:
        assert out["seg"].shape == (2, 3, SIZE, SIZE)  # background and two classes
    if "depth" in out:
        assert out["depth"].shape == (2, SIZE, SIZE) and (out["depth"] > 0).all()


def test_both_heads_learn_the_squares_and_the_metrics_say_so():
    model = _module(task="both", lr=0.01)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    train = dense_squares(32, 0)
    for _ in range(80):
        loss = model.losses(model(train["image"]), train)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test = dense_squares(16, 1)
    with torch.no_grad():
        out = model(test["image"])
    seg, depth = model.metrics["seg_val_all"], model.metrics["depth_val_all"]
    seg.update(out["seg"], test["seg"])
    depth.update(out["depth"], test["depth"])
    assert seg.compute()["miou"] > 0.9
    assert depth.compute()["absrel"] < 0.1


def test_unlabelled_pixels_send_no_gradient():
    model = _module(task="both")
    batch = dense_squares(2, 0)
    batch["seg"][:] = -1
    batch["depth"][:] = 0
    losses = model.losses(model(batch["image"]), batch)
    assert losses["seg"].item() == 0 and losses["depth"].item() == 0
    losses["total"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"classes": ["road", "bus"]},
            "model.classes: the model is for ['road', 'bus'], the data has ['road', 'car']",
        ),
        ({"ignore_index": 1}, "model.ignore_index: ignore_index 1 is a class id (ids 0 .. 2)"),
        ({"class_weights": [1.0, 2.0]}, "model.class_weights: class_weights must hold 3"),
        ({"seg_loss": "focal"}, "model.seg_loss"),
        ({"task": "edges"}, "model.task"),
        ({"depth_scale": 0}, "model.depth_scale"),
        ({"backbone": "vgg"}, "model.backbone: unknown backbone 'vgg'"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_field(options, message):
    with pytest.raises(WorkbenchError) as caught:
        _module(**options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_segmentation_config_fits_tests_and_predicts_rendered_streets(
    tmp_path, rendered_streets, rendered_dir
):
    config = street_config(tmp_path, rendered_streets, "segmentation_street.yaml")
    run_cli("fit", "-c", str(config))
    run_dir = tmp_path / "runs" / "segmentation_street"
    (metrics,) = run_dir.glob("version_*/metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    for key in (
        "val/miou/clone",
        "val/pixel_acc/all",
        "val/iou_car/clone",
        "val/iou_background/all",
    ):
        assert key in header
    assert sorted(p.name for p in run_dir.glob("version_*/overlays/*.png")) == [
        "epoch_000.png",
        "epoch_001.png",
    ]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint_kind(read_checkpoint(last)) == "dense"
    done = run_cli("test", "-c", str(config), "--ckpt_path", str(last))
    for key in ("test/miou/test_clone", "test/miou/test_fog", "test/pixel_acc/all"):
        assert key in done.stdout
    run_cli("predict", "-c", str(config), "--ckpt_path", str(last))
    digits = street_config(tmp_path, rendered_streets, "segmentation_street.yaml",
                           [{"kind": "rendered", "path": str(rendered_dir), "name": "digits",
                             "role": "test"}])  # fmt: skip
    done = run_cli("test", "-c", str(digits), "--ckpt_path", str(last), check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--ckpt_path: the checkpoint was trained for ['road', 'sidewalk'" in done.stderr
    assert "the data has ['0', '1'" in done.stderr
    (listing,) = run_dir.glob("version_*/predictions.csv")
    rows = list(csv.DictReader(listing.open()))
    assert len(rows) == 16 and {r["source"] for r in rows} == {"test_clone", "test_fog"}
    seg = np.asarray(Image.open(listing.parent / rows[0]["seg"]))
    assert seg.shape == (32, 32) and seg.max() <= 6


def test_depth_config_logs_eigen_metrics_per_condition(tmp_path, rendered_streets):
    config = street_config(tmp_path, rendered_streets, "depth_street.yaml")
    run_cli("fit", "-c", str(config), "--trainer.max_epochs", "1")
    last = tmp_path / "runs" / "depth_street" / "checkpoints" / "last.ckpt"
    done = run_cli("test", "-c", str(config), "--ckpt_path", str(last))
    for metric in ("absrel", "rmse", "log_rmse", "delta1", "delta2", "delta3"):
        assert f"test/{metric}/test_fog" in done.stdout


def test_data_without_dense_labels_is_refused_in_one_line(tmp_path, rendered_streets):
    config = street_config(
        tmp_path,
        rendered_streets,
        "segmentation_street.yaml",
        [{"kind": "digits", "name": "natural"}],
    )
    done = run_cli("fit", "-c", str(config), check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: data.sources: natural (train) has no segmentation labels, which this dense model "
        "needs; use rendered data (workbench render) for every source"
    ], done.stderr[-2000:]
    other = street_config(tmp_path, rendered_streets, "segmentation_street.yaml")
    done = run_cli("fit", "-c", str(other), "--model.init_args.ignore_index", "3", check=False)
    assert (
        done.returncode == 2 and "model.ignore_index: ignore_index 3 is a class id" in done.stderr
    )
