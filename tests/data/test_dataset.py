"""Reader, verification and exports of a rendered dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import webdataset as wds
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tests.conftest import run_cli
from workbench.data import open_dataset, open_paired
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
        # the amodal extent rides along as extra fields: the recorded box and RLE mask
        x0, y0, x1, y1 = obj["amodal_box"]
        assert ann["amodal_bbox"] == [x0, y0, x1 - x0, y1 - y0]
        amodal = mask_utils.decode(ann["amodal_segmentation"])
        assert amodal.sum() >= coco.annToMask(ann).sum()
        assert (amodal >= coco.annToMask(ann)).all()
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


def _damage(copy, suffix: str, data: bytes | None, index: int = 6):
    path = copy / "shards" / "000001" / f"{index:06d}.{suffix}"
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    return path


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _grey_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("suffix", "damage", "reason"),
    [
        ("rgb.png", lambda old: b"\x00garbage" * 40, "not a readable PNG image"),
        ("rgb.png", lambda old: old[: len(old) // 2], "truncated or corrupt PNG"),
        ("rgb.png", lambda old: _grey_png(), "a L PNG where the dataset contract has RGB"),
        ("seg.png", lambda old: _jpeg(), "not a readable PNG image (judged by its content"),
        ("inst.png", lambda old: None, "unreadable sample file"),
        ("json", lambda old: old[:-5], "corrupt sample JSON"),
        ("depth.npy", lambda old: old[:40], "corrupt .npy file"),
        ("depth.npy", lambda old: _npy(np.zeros((48, 48))), "float64 (48, 48) where the"),
    ],
)
def test_reader_names_a_corrupt_sample_file(shapes_dir, tmp_path, suffix, damage, reason):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    victim = copy / "shards" / "000001" / f"000006.{suffix}"
    new = damage(victim.read_bytes())
    _damage(copy, suffix, new)
    dataset = open_dataset(copy)
    with pytest.raises(WorkbenchError) as info:
        dataset[6]
    message = str(info.value)
    assert message.startswith(f"{victim}: ") and reason in message and "\n" not in message
    assert dataset[5]["rgb"].shape == (48, 48, 3)  # the other samples still read


def test_reader_refuses_a_decompression_bomb_in_place_of_rgb(shapes_dir, tmp_path):
    import shutil

    from tests.test_imageio import bomb_png

    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    victim = _damage(copy, "rgb.png", bomb_png(30000, 30000))
    with pytest.raises(WorkbenchError, match=rf"^{victim}: too many pixels"):
        open_dataset(copy, modalities=("rgb",))[6]


def test_decode_file_without_a_name_names_the_suffix():
    with pytest.raises(WorkbenchError, match=r"^rgb.png: not a readable PNG image"):
        decode_file("rgb.png", b"not an image")


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", ".hidden", "", "x" * 65, 3])
def test_paired_condition_names_are_folder_names_never_paths(tmp_path, name):
    (tmp_path / "conditions.json").write_text(json.dumps({"conditions": ["clone", name]}))
    with pytest.raises(WorkbenchError, match="malformed paired conditions list"):
        open_paired(tmp_path)


def test_paired_condition_names_may_be_virtual_kitti_s(tmp_path, rendered_dir):
    for name in ("clone", "15-deg-left"):
        shutil.copytree(rendered_dir, tmp_path / name)
    (tmp_path / "conditions.json").write_text(json.dumps({"conditions": ["clone", "15-deg-left"]}))
    assert list(open_paired(tmp_path)) == ["clone", "15-deg-left"]
