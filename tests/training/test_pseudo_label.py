"""``workbench pseudo-label``: an ensemble labels unlabelled items, kept by agreement and
confidence, written in the dataset contract and read back as a ``pseudo`` source."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.inspect.tiny_models import save_module
from workbench.data.datamodule import MixedDataModule
from workbench.data.reader import open_dataset
from workbench.training.classifier import Classifier
from workbench.training.recipe import TrainBudget, natural, train_classifier


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two small classifiers trained on 10 natural digits per class (seeds 0 and 1), 8 px."""
    folder = tmp_path_factory.mktemp("members")
    budget = TrainBudget(image_size=8, width=8, depth=3, epochs=4, epoch_size=512)
    paths = []
    for seed in (0, 1):
        model = train_classifier([natural(10)], budget, seed)
        paths.append(folder / f"member{seed}.ckpt")
        model.trainer.save_checkpoint(paths[-1])
    return [str(p) for p in paths]


def pseudo(members, data, out, *options, check=True):
    args = [a for m in members for a in ("--ckpt", m)]
    return run_cli("pseudo-label", *args, "--data", str(data), "--out", str(out), "--quiet",
                   *options, check=check)  # fmt: skip


def test_the_ensemble_labels_digits_and_a_source_reads_them_back(members, tmp_path):
    out = tmp_path / "pseudo"
    done = pseudo(members, "digits", out, "--min-confidence", "0.6")
    manifest = json.loads((out / "manifest.json").read_text())
    summary = manifest["pseudo_labels"]
    assert manifest["kind"] == "pseudo" and manifest["complete"]
    assert 0 < summary["kept"] < summary["items"] == 1259
    assert f"{summary['kept']} of 1259 items pseudo-labelled" in done.stdout
    # confident, agreed labels are more often right than all of them
    assert summary["accuracy_kept"] >= summary["accuracy_all"] > 0.5
    dataset = open_dataset(out, modalities=("rgb",))
    metas = [dataset.meta(i) for i in range(len(dataset))]
    assert all(m["confidence"] >= 0.6 and m["agreement"] == 1.0 for m in metas)
    right = np.mean([m["label"] == m["true_label"] for m in metas])
    assert right == pytest.approx(summary["accuracy_kept"])
    data = MixedDataModule([{"kind": "pseudo", "path": str(out), "name": "pseudo"}],
                           image_size=8, val_fraction=0.0)  # fmt: skip
    data.setup("fit")
    assert len(data.datasets["train"]) == summary["kept"]
    assert data.datasets["train"].labels().tolist() == [m["label"] for m in metas]


def test_a_folder_of_images_without_classes(members, tmp_path):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "pseudo"
    pseudo(members, folder, out, "--min-confidence", "0", "--agree", "majority")
    manifest = json.loads((out / "manifest.json").read_text())
    summary = manifest["pseudo_labels"]
    assert 1 <= summary["kept"] <= 6 and summary["items"] == 6
    assert summary["accuracy_kept"] is None and summary["accuracy_all"] is None
    assert "true_label" not in open_dataset(out, modalities=("rgb",)).meta(0)


def test_bad_input_is_one_line_and_writes_nothing(members, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = Classifier(num_classes=10, in_channels=1, image_size=16, backbone="small_cnn",
                       backbone_options={"width": 4, "depth": 1})  # fmt: skip
    wide = str(save_module(other, "classifier", tmp_path / "wide.ckpt"))
    cases = [
        ((members, empty), "no PNG or JPEG images in this folder"),
        (([members[0], wide], "digits"), "has other input size (16) than"),
        ((members, "digits", "--min-confidence", "1.5"), "--min-confidence: must lie in [0, 1]"),
    ]
    for number, ((ckpts, data, *options), message) in enumerate(cases):
        out = tmp_path / f"out{number}"
        done = pseudo(ckpts, data, out, *options, check=False)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()
