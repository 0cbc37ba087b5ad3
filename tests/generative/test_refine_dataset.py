"""A refined copy of a rendered dataset: refined images, every label file unchanged."""

import hashlib
import json

import numpy as np
import pytest
from torch import nn

from tests.conftest import run_cli
from workbench.data.datamodule import MixedDataModule
from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.generative.refine_dataset import refine_dataset


class Inverter(nn.Module):
    """A stand-in refiner: inverts the image (``in_channels`` 1 or 3, side ``size``)."""

    def __init__(self, size: int, channels: int):
        super().__init__()
        self.hparams = {"image_size": size, "in_channels": channels}
        self.calls = 0

    def refine(self, images):
        self.calls += 1
        assert images.shape[1:] == (self.hparams["in_channels"], *[self.hparams["image_size"]] * 2)
        return 1 - images


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """24 rendered digits at 16 px in three shards."""
    out = tmp_path_factory.mktemp("rendered") / "digits16"
    run_cli("render", "digits", "--num", "24", "--resolution", "16", "--shard-size", "8",
            "--workers", "1", "--quiet", "--out", str(out))  # fmt: skip
    return out


def _files(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("shards/*/*"))
        if not p.name.startswith("_")
    }


def test_refined_copy_changes_only_the_images(rendered_dir, tmp_path):
    out = refine_dataset(Inverter(32, 1), rendered_dir, tmp_path / "refined",
                         {"sha256": "abc"}, progress=False)  # fmt: skip
    before, after = open_dataset(rendered_dir), open_dataset(out)
    assert len(after) == len(before) and after.verify() == []
    assert after.labels() == before.labels()
    old, new = _files(rendered_dir), _files(out)
    assert old.keys() == new.keys()
    changed = {name for name in old if old[name] != new[name]}
    assert changed and all(name.endswith(".rgb.png") for name in changed)
    grey = (before[3]["rgb"].astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114])).round(2)
    refined = after[3]["rgb"].astype(np.float32) / 255
    assert np.allclose(refined[..., 0], 1 - grey, atol=0.02)
    assert (refined[..., 0] == refined[..., 1]).all()  # a grey refiner writes grey RGB
    manifest = after.manifest
    assert manifest["refined"]["refiner"] == {"sha256": "abc"}
    assert manifest["refined"]["source"] == str(rendered_dir.resolve())
    assert manifest["classes"] == before.manifest["classes"]
    # the rendered source kind reads it with its dense labels
    dm = MixedDataModule([{"kind": "rendered", "path": str(out), "name": "refined"}],
                         image_size=32, val_fraction=0.0)  # fmt: skip
    dm.setup("fit")
    assert dm.split_report["train"] == {"refined": len(before)}


def test_rgb_refiner_and_resume(sharded, tmp_path):
    out = tmp_path / "refined"
    refine_dataset(Inverter(16, 3), sharded, out, progress=False)
    reference = _files(out)
    assert np.array_equal(open_dataset(out)[9]["rgb"], 255 - open_dataset(sharded)[9]["rgb"])
    # interrupted after the first shard: the rest is refined on the next run, nothing else
    shards = sorted((out / "shards").iterdir())
    for folder in shards[1:]:
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    refiner = Inverter(16, 3)
    refine_dataset(refiner, sharded, out, progress=False)
    assert len(shards) == 3 and refiner.calls == 2
    assert _files(out) == reference and open_dataset(out).verify() == []


def test_a_refiner_of_another_size_is_refused(rendered_dir, tmp_path):
    with pytest.raises(
        WorkbenchError, match="images are 32 x 32 but the refiner was trained on 16 x 16"
    ):
        refine_dataset(Inverter(16, 1), rendered_dir, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(WorkbenchError, match="is the input dataset"):
        refine_dataset(Inverter(32, 1), rendered_dir, rendered_dir, progress=False)
    with pytest.raises(WorkbenchError, match="not a workbench dataset"):
        refine_dataset(Inverter(32, 1), tmp_path, tmp_path / "r", progress=False)
