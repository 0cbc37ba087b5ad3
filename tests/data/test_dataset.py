"""Reader, verification and exports of a rendered dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import webdataset as wds
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tests.conftest import run_cli
from workbench.data import open_dataset
from workbench.data.format import decode_file
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "ds"
    run_cli(
        "render",
        "shapes",
        "--num",
        "12",
        "--resolution",
        "48",
        "--shard-size",
        "5",
        "--quiet",
        "--out",
        str(out),
    )
    return out


def test_reader_random_access_and_iteration(shapes_dir):
    ds = open_dataset(shapes_dir)
    assert len(ds) == 12 and ds.classes[0] == "cube" and ds.condition == "clone"
    sample = ds[7]
    assert sample["rgb"].shape == (48, 48, 3) and sample["rgb"].dtype == np.uint8
    assert sample["depth"].dtype == np.float32 and sample["seg"].dtype == np.uint8
    assert sample["inst"].dtype == np.uint16 and sample["meta"]["index"] == 7
    assert [s["meta"]["index"] for s in ds] == list(range(12))
    assert ds.labels() == [ds.meta(i)["label"] for i in range(12)]
    with pytest.raises(IndexError):
        ds[12]


def test_reader_loads_only_requested_modalities(shapes_dir):
    sample = open_dataset(shapes_dir, modalities=("seg",))[0]
    assert set(sample) == {"meta", "seg"}
    with pytest.raises(WorkbenchError, match="unknown"):
        open_dataset(shapes_dir, modalities=("normals",))


def test_verify_finds_corrupt_and_missing_files(shapes_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    assert open_dataset(copy).verify() == []
    victim = next(copy.glob("shards/000001/*.rgb.png"))
    victim.write_bytes(victim.read_bytes()[:-10])
    (copy / "shards/000002/000010.json").unlink()
    problems = open_dataset(copy).verify()
    assert any("sha256 mismatch" in p and victim.name in p for p in problems)
    assert any("000010.json: missing" in p for p in problems)
    done = run_cli("verify", str(copy), check=False)
    assert done.returncode == 1 and "2 problems" in done.stdout


def test_coco_export_masks_match_instance_maps(shapes_dir, tmp_path):
    done = run_cli("export", "coco", str(shapes_dir), "--out", str(tmp_path / "coco.json"))
    assert "coco.json" in done.stdout
    coco = COCO(str(tmp_path / "coco.json"))
    ds = open_dataset(shapes_dir)
    assert len(coco.getImgIds()) == 12
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ds.classes
    checked = 0
    for ann in coco.loadAnns(coco.getAnnIds()):
        sample = ds[ann["image_id"]]
        obj = next(
            o
            for o in sample["meta"]["objects"]
            if o["class_id"] + 1 == ann["category_id"]
            and mask_utils.area(ann["segmentation"]) == o["pixels"]
        )
        assert np.array_equal(
            coco.annToMask(ann), (sample["inst"] == obj["instance_id"]).astype(np.uint8)
        )
        x0, y0, x1, y1 = obj["box"]
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        checked += 1
    assert checked >= 12


def test_webdataset_export_streams_the_same_samples(shapes_dir, tmp_path):
    run_cli(
        "export",
        "webdataset",
        str(shapes_dir),
        "--out",
        str(tmp_path / "wds"),
        "--samples-per-tar",
        "5",
    )
    tars = sorted((tmp_path / "wds").glob("*.tar"))
    assert [t.name for t in tars] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    ds = open_dataset(shapes_dir)
    seen = 0
    for record in wds.WebDataset([str(t) for t in tars], shardshuffle=False):
        index = int(record["__key__"])
        assert np.array_equal(decode_file("rgb.png", record["rgb.png"]), ds[index]["rgb"])
        assert np.array_equal(decode_file("depth.npy", record["depth.npy"]), ds[index]["depth"])
        assert json.loads(record["json"])["label"] == ds.meta(index)["label"]
        seen += 1
    assert seen == 12


def test_not_a_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(WorkbenchError, match="not a workbench dataset"):
        open_dataset(tmp_path)
