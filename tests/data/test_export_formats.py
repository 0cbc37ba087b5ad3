"""``workbench export hf|yolo|kitti|voc``: each format parsed back and compared with the
dataset's own boxes, masks and labels; paired conditions as splits; --force, nothing
half-written, and formats that do not fit refused in one line."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.generative.tiny_models import fit_tiny
from workbench.cli import EXPORT_FORMATS, main
from workbench.data.export import EXPORTS, to_hf, to_kitti, to_voc, to_yolo
from workbench.data.reader import open_dataset, open_paired


def _visible(meta: dict) -> list[dict]:
    return [o for o in meta["objects"] if o["box"] is not None]


def test_the_cli_lists_every_format():
    assert sorted(EXPORT_FORMATS) == EXPORTS.names()


def test_hf_reads_back_with_every_label_and_factor(rendered_dir, tmp_path):
    import datasets

    out = to_hf(rendered_dir, tmp_path / "hf", progress=False)
    exported, original = datasets.load_from_disk(str(out)), open_dataset(rendered_dir)
    assert len(exported) == len(original)
    assert exported.features["label"].names == original.classes
    for index in (0, len(original) - 1):
        row, sample = exported[index], original[index]
        np.testing.assert_array_equal(np.asarray(row["image"]), sample["rgb"])
        np.testing.assert_array_equal(np.asarray(row["seg"]), sample["seg"])
        np.testing.assert_array_equal(np.asarray(row["inst"]), sample["inst"])
        np.testing.assert_array_equal(np.asarray(row["depth"], np.float32), sample["depth"])
        meta = sample["meta"]
        assert row["label"] == meta["label"] and row["index"] == index
        assert row["objects"]["bbox"] == [o["box"] for o in _visible(meta)]
        assert row["factor.digit"] == meta["factors"]["digit"]
        assert row["factor.camera.azimuth_deg"] == pytest.approx(
            meta["factors"]["camera"]["azimuth_deg"]
        )


def test_hf_makes_one_split_per_condition(rendered_streets, tmp_path):
    import datasets

    out = to_hf(rendered_streets / "test", tmp_path / "hf", progress=False)
    exported = datasets.load_from_disk(str(out))
    assert set(exported) == {"clone", "fog"}
    paired = open_paired(rendered_streets / "test")
    for condition, dataset in paired.items():
        assert len(exported[condition]) == len(dataset)
        assert exported[condition][0]["condition"] == condition
        np.testing.assert_array_equal(np.asarray(exported[condition][3]["image"]),
                                      dataset[3]["rgb"])  # fmt: skip


def test_yolo_labels_give_back_the_boxes(rendered_streets, tmp_path):
    out = to_yolo(rendered_streets / "test", tmp_path / "yolo", progress=False)
    config = yaml.safe_load((out / "data.yaml").read_text())
    fog = open_paired(rendered_streets / "test")["fog"]
    assert config["names"] == dict(enumerate(fog.classes)) and config["fog"] == "images/fog"
    for index in range(len(fog)):
        meta = fog.meta(index)
        w, h = meta["camera"]["width"], meta["camera"]["height"]
        rows = [line.split() for line in (out / "labels" / "fog" / f"{index:06d}.txt")
                .read_text().splitlines()]  # fmt: skip
        boxes = [
            [int(c), round((float(x) - float(bw) / 2) * w), round((float(y) - float(bh) / 2) * h),
             round((float(x) + float(bw) / 2) * w), round((float(y) + float(bh) / 2) * h)]
            for c, x, y, bw, bh in rows
        ]  # fmt: skip
        assert boxes == [[o["class_id"], *o["box"]] for o in _visible(meta)]
        image = Image.open(out / "images" / "fog" / f"{index:06d}.png")
        np.testing.assert_array_equal(np.asarray(image), fog[index]["rgb"])


def test_kitti_labels_give_back_boxes_and_occlusion(rendered_streets, tmp_path):
    out = to_kitti(rendered_streets / "train", tmp_path / "kitti", progress=False)
    dataset = open_dataset(rendered_streets / "train")
    occluded = 0
    for index in range(len(dataset)):
        meta = dataset.meta(index)
        lines = (out / "clone" / "label_2" / f"{index:06d}.txt").read_text().splitlines()
        objects = _visible(meta)
        assert len(lines) == len(objects)
        for line, obj in zip(lines, objects, strict=True):
            fields = line.split()
            assert len(fields) == 15 and fields[0] == obj["class_name"].replace(" ", "_")
            x1, y1, x2, y2 = map(float, fields[4:8])
            assert [x1, y1, x2 + 1, y2 + 1] == obj["box"]
            level = int(fields[2])
            assert level == (0 if obj["visible_fraction"] >= 0.99
                             else 1 if obj["visible_fraction"] >= 0.5 else 2)  # fmt: skip
            occluded += level > 0
    assert occluded > 0  # the street scene has occluded things: the levels are exercised


def test_voc_annotations_and_masks_give_back_the_dataset(rendered_streets, tmp_path):
    out = to_voc(rendered_streets / "test", tmp_path / "voc", progress=False)
    paired = open_paired(rendered_streets / "test")
    labels = (out / "labels.txt").read_text().splitlines()
    assert labels == ["background", *paired["clone"].classes]
    for condition, dataset in paired.items():
        ids = (out / "ImageSets" / "Segmentation" / f"{condition}.txt").read_text().split()
        assert ids == [f"{condition}_{i:06d}" for i in range(len(dataset))]
        for index in (0, len(dataset) - 1):
            sample, image_id = dataset[index], ids[index]
            root = ET.parse(out / "Annotations" / f"{image_id}.xml").getroot()
            boxes = [
                [labels.index(o.findtext("name")) - 1,
                 *(int(o.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))]
                for o in root.iter("object")
            ]  # fmt: skip
            expected = [[o["class_id"], o["box"][0] + 1, o["box"][1] + 1, *o["box"][2:]]
                        for o in _visible(sample["meta"])]  # fmt: skip
            assert boxes == expected
            seg = Image.open(out / "SegmentationClass" / f"{image_id}.png")
            assert seg.mode == "P"
            np.testing.assert_array_equal(np.asarray(seg), sample["seg"])
            inst = np.asarray(Image.open(out / "SegmentationObject" / f"{image_id}.png"))
            np.testing.assert_array_equal(inst, sample["inst"])
            jpeg = np.asarray(Image.open(out / "JPEGImages" / f"{image_id}.jpg"), np.float32)
            assert np.abs(jpeg - sample["rgb"]).mean() < 8  # lossy, close


def test_force_replaces_and_bad_input_is_one_line(rendered_dir, tmp_path, capsys):
    def run(*args):
        code = main(["export", *args, "--quiet"])
        return code, capsys.readouterr()

    out = tmp_path / "yolo"
    assert run("yolo", str(rendered_dir), "--out", str(out))[0] == 0
    (out / "stale.txt").write_text("from before")
    code, captured = run("yolo", str(rendered_dir), "--out", str(out))
    assert code == 2 and "already exists; add --force to replace it" in captured.err
    assert run("yolo", str(rendered_dir), "--out", str(out), "--force")[0] == 0
    assert not (out / "stale.txt").exists() and (out / "data.yaml").is_file()

    samples = tmp_path / "samples"
    gan = fit_tiny("gan", tmp_path / "gan.ckpt")
    assert main(["sample", "--ckpt", str(gan), "--num", "4", "--out", str(samples),
                 "--quiet"]) == 0  # fmt: skip
    for fmt in ("yolo", "kitti", "voc"):
        code, captured = run(fmt, str(samples), "--out", str(tmp_path / f"no_{fmt}"))
        err = captured.err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert "has no object boxes" in err and f"cannot be exported as {fmt}" in err
        assert not (tmp_path / f"no_{fmt}").exists()
    code, captured = run("hf", str(rendered_dir))
    assert code == 2 and "--out: hf writes a folder; name it with --out DIR" in captured.err
    assert not list(tmp_path.glob(".*partial*"))  # nothing half-written is left
