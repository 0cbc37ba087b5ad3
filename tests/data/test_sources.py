"""Labelled data sources: natural digits, ImageFolder trees, rendered datasets, generators."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tests.conftest import RENDERED_DIGITS
from tests.test_imageio import bomb_png
from workbench.data.format import decode_file
from workbench.data.sources import (
    DIGIT_CLASSES,
    ConditionalGenerator,
    DigitsSource,
    GeneratedSource,
    ImageFolderSource,
    RenderedSource,
    content_hash,
    digits_split_indices,
)
from workbench.errors import WorkbenchError


def write_png(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# --- natural digits ------------------------------------------------------------------------------


def test_digits_split_is_fixed_disjoint_complete_and_stratified():
    target = load_digits().target
    parts = digits_split_indices()
    assert set(parts) == {"train", "val", "test"}
    sets = {k: set(v.tolist()) for k, v in parts.items()}
    # no index twice within a split, none shared between splits, all 1,797 covered
    assert all(len(sets[k]) == len(parts[k]) for k in parts)
    assert not sets["train"] & sets["val"]
    assert not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert sets["train"] | sets["val"] | sets["test"] == set(range(1797))
    # every class in every split, with the per-class fractions of the docstring
    for label in range(10):
        n = int((target == label).sum())
        assert (target[parts["test"]] == label).sum() == round(0.2 * n)
        assert (target[parts["val"]] == label).sum() == round(0.1 * n)
        assert (target[parts["train"]] == label).sum() == n - round(0.2 * n) - round(0.1 * n)
    assert 0.19 < len(parts["test"]) / 1797 < 0.21
    assert 0.09 < len(parts["val"]) / 1797 < 0.11
    # fixed: the same on every call
    again = digits_split_indices()
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_digits_source_items_match_sklearn_and_split():
    data = load_digits()
    parts = digits_split_indices()
    for split in ("train", "val", "test"):
        source = DigitsSource(split)
        assert len(source) == len(parts[split])
        assert source.classes == DIGIT_CLASSES == [str(d) for d in range(10)]
        assert source.name == "digits" and source.split == split
        np.testing.assert_array_equal(source.labels(), data.target[parts[split]])
        assert set(source.labels().tolist()) == set(range(10))
    source = DigitsSource("test")
    item = source[5]
    assert set(item) == {"image", "label", "seg", "depth"}
    assert item["image"].shape == (8, 8, 1) and item["image"].dtype == np.float32
    assert item["seg"] is None and item["depth"] is None
    assert isinstance(item["label"], int) and item["label"] == source.labels()[5]
    np.testing.assert_allclose(item["image"][..., 0], data.images[parts["test"][5]] / 16.0)
    images = np.stack([source[i]["image"] for i in range(len(source))])
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() == 1.0


def test_digits_trainval_and_unknown_split():
    parts = digits_split_indices()
    trainval = DigitsSource("trainval")
    assert len(trainval) == len(parts["train"]) + len(parts["val"])
    hashes = {content_hash(trainval[i]["image"]) for i in range(len(trainval))}
    test = DigitsSource("test")
    assert not hashes & {content_hash(test[i]["image"]) for i in range(len(test))}
    with pytest.raises(WorkbenchError, match="unknown 'holdout'"):
        DigitsSource("holdout")


def test_digits_per_class_keeps_k_of_every_class_from_the_split():
    full = DigitsSource("train")
    few = DigitsSource("train", per_class=3, name="few")
    assert few.name == "few"
    assert len(few) == 30
    np.testing.assert_array_equal(np.bincount(few.labels(), minlength=10), [3] * 10)
    train_hashes = {content_hash(full[i]["image"]) for i in range(len(full))}
    assert all(content_hash(few[i]["image"]) in train_hashes for i in range(len(few)))
    # more than a class has keeps the whole class
    assert len(DigitsSource("val", per_class=1000)) == len(DigitsSource("val"))


def test_digits_source_is_deterministic_across_constructions():
    a, b = DigitsSource("train", per_class=5), DigitsSource("train", per_class=5)
    np.testing.assert_array_equal(a.labels(), b.labels())
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i]["image"], b[i]["image"])


# --- ImageFolder ---------------------------------------------------------------------------------


def test_imagefolder_classes_are_sorted_folder_names(tmp_path):
    rng = np.random.default_rng(0)
    for name, count in (("zebra", 2), ("apple", 3), ("mango", 1)):
        for i in range(count):
            write_png(tmp_path / name / f"{i}.png", rng.integers(0, 256, (6, 5, 3), np.uint8))
    (tmp_path / "mango" / "notes.txt").write_text("not an image")
    gray = rng.integers(0, 256, (4, 7), np.uint8)
    write_png(tmp_path / "apple" / "sub" / "gray.png", gray)
    source = ImageFolderSource(tmp_path)
    assert source.classes == ["apple", "mango", "zebra"]
    assert source.name == tmp_path.name
    assert len(source) == 7  # nested images count, non-images do not
    np.testing.assert_array_equal(source.labels(), [0, 0, 0, 0, 1, 2, 2])
    assert [source[i]["label"] for i in range(len(source))] == source.labels().tolist()
    item = source[0]
    assert item["image"].shape == (6, 5, 3) and item["image"].dtype == np.float32
    assert item["seg"] is None and item["depth"] is None
    expected = np.asarray(Image.open(tmp_path / "apple" / "0.png"), np.float32) / 255
    np.testing.assert_allclose(item["image"], expected)
    # grayscale files come back with their exact 8-bit values
    gray_item = source[3]
    assert gray_item["image"].shape[:2] == (4, 7)
    np.testing.assert_array_equal(np.round(gray_item["image"][..., 0] * 255), gray)
    assert ImageFolderSource(tmp_path, name="mine").name == "mine"


def test_imagefolder_empty_tree_is_an_error(tmp_path):
    with pytest.raises(WorkbenchError, match="empty ImageFolder"):
        ImageFolderSource(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(WorkbenchError, match="empty ImageFolder"):
        ImageFolderSource(tmp_path)
    with pytest.raises(WorkbenchError, match="not found"):
        ImageFolderSource(tmp_path / "missing")
    write_png(tmp_path / "a" / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(WorkbenchError, match="unknown policy 'ignore'"):
        ImageFolderSource(tmp_path, corrupt="ignore")


@pytest.fixture
def tree_with_corrupt_files(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("cat", "dog"):
        for i in range(2):
            write_png(tmp_path / name / f"{i}.png", rng.integers(0, 256, (5, 5, 3), np.uint8))
    garbage = tmp_path / "dog" / "1b_garbage.png"
    garbage.write_bytes(rng.integers(0, 256, 300, np.uint8).tobytes())
    # a real PNG cut in half: the header is fine, the data is not
    whole = tmp_path / "cat" / "0.png"
    truncated = tmp_path / "cat" / "0b_truncated.png"
    big = tmp_path / "big.png"
    write_png(big, rng.integers(0, 256, (64, 64, 3), np.uint8))
    data = big.read_bytes()
    big.unlink()
    truncated.write_bytes(data[: len(data) // 2])
    # a few kilobytes declaring 5000 x 5000 pixels (75 MB decoded)
    bomb = tmp_path / "dog" / "1c_bomb.jpg"
    bomb.write_bytes(bomb_png(5000, 5000))
    # a GIF named .png: Pillow reads it, the ImageFolder contract (PNG or JPEG) does not
    gif = tmp_path / "cat" / "0c_gif.png"
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), np.uint8)).save(gif, format="GIF")
    # other suffixes are not listed at all
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), np.uint8)).save(tmp_path / "cat" / "x.bmp")
    assert whole.is_file()
    return tmp_path, {
        garbage: "not a readable PNG or JPEG image",
        truncated: "truncated or corrupt PNG",
        bomb: "too many pixels (5000 x 5000 > 16,777,216 allowed)",
        gif: "not a readable PNG or JPEG image",
    }


def test_imagefolder_corrupt_file_is_named_on_access(tree_with_corrupt_files):
    root, bad = tree_with_corrupt_files
    source = ImageFolderSource(root, corrupt="error")
    assert len(source) == 8  # nothing is opened up front; the .bmp is not listed
    named, loaded = {}, 0
    for i in range(len(source)):
        try:
            item = source[i]
        except WorkbenchError as exc:
            message = str(exc)
            assert "\n" not in message and message.endswith(
                "set corrupt: skip to leave such files out"
            )
            path, _, reason = message.partition(": ")
            named[path] = reason
        else:
            assert item["image"].shape == (5, 5, 3)  # the good ones still load
            loaded += 1
    assert loaded == 4
    assert sorted(named) == sorted(str(p) for p in bad)
    for path, expected in bad.items():
        assert expected in named[str(path)]


def test_imagefolder_corrupt_files_are_skipped_and_listed(tree_with_corrupt_files, caplog):
    root, bad = tree_with_corrupt_files
    with caplog.at_level("WARNING", logger="workbench.data.sources"):
        source = ImageFolderSource(root, corrupt="skip")
    assert sorted(source.skipped) == sorted(str(p) for p in bad)
    assert all(str(p) in caplog.text for p in bad)
    assert len(source) == 4
    np.testing.assert_array_equal(source.labels(), [0, 0, 1, 1])
    for i in range(len(source)):
        assert source[i]["image"].shape == (5, 5, 3)
    assert ImageFolderSource(root, corrupt="error").skipped == []


def test_imagefolder_reads_jpeg_by_content(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (6, 6, 3), np.uint8)
    (tmp_path / "a").mkdir()
    Image.fromarray(image).save(tmp_path / "a" / "photo.jpeg", format="JPEG")
    Image.fromarray(image).save(tmp_path / "a" / "really_a_png.jpg", format="PNG")
    source = ImageFolderSource(tmp_path)
    assert len(source) == 2
    np.testing.assert_array_equal(np.round(source[1]["image"] * 255), image)  # the PNG, lossless
    assert source[0]["image"].shape == (6, 6, 3)


# --- rendered datasets ---------------------------------------------------------------------------


def test_rendered_source_items_carry_seg_and_depth(rendered_dir):
    source = RenderedSource(rendered_dir)
    assert len(source) == RENDERED_DIGITS
    assert source.classes == DIGIT_CLASSES
    assert source.name == rendered_dir.name
    assert RenderedSource(rendered_dir, name="synth").name == "synth"
    json_files = sorted(rendered_dir.glob("shards/*/[0-9]*.json"))
    assert len(json_files) == RENDERED_DIGITS
    json_labels = [json.loads(p.read_text())["label"] for p in json_files]
    assert source.labels().tolist() == json_labels
    assert len(set(json_labels)) > 1
    for i, path in enumerate(json_files):
        item = source[i]
        label = json_labels[i]
        assert item["label"] == label
        image, seg, depth = item["image"], item["seg"], item["depth"]
        assert image.shape == (32, 32, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        stem = path.name.removesuffix(".json")
        rgb = decode_file("rgb.png", (path.parent / f"{stem}.rgb.png").read_bytes())
        np.testing.assert_allclose(image, rgb.astype(np.float32) / 255)
        # seg: the class index + 1 on the glyph, 0 elsewhere
        assert seg.shape == (32, 32) and seg.dtype == np.int64
        assert set(np.unique(seg).tolist()) == {0, label + 1}
        assert depth.shape == (32, 32) and depth.dtype == np.float32
        np.testing.assert_array_equal(depth, np.load(path.parent / f"{stem}.depth.npy"))
        assert depth[seg > 0].max() > 0


# --- generated -----------------------------------------------------------------------------------


class FakeGenerator:
    """Class-conditional images: channel 0 encodes the label, channels 1-2 are seeded noise."""

    def __init__(self, classes: Sequence[str] = tuple("abcd"), size: int = 6):
        self.classes = list(classes)
        self.size = size
        self.calls: list[tuple[list[int], int]] = []

    def generate(self, labels: Sequence[int], seed: int) -> np.ndarray:
        self.calls.append((list(labels), seed))
        rng = np.random.default_rng(seed)
        images = rng.random((len(labels), self.size, self.size, 3))
        images[..., 0] = np.asarray(labels, np.float64)[:, None, None] / len(self.classes)
        return images  # float64 on purpose: the source converts


def test_fake_generator_satisfies_the_protocol():
    assert isinstance(FakeGenerator(), ConditionalGenerator)
    assert not isinstance(object(), ConditionalGenerator)


def test_generated_source_labels_are_balanced_and_match_images():
    gen = FakeGenerator()
    source = GeneratedSource(gen, num=20, seed=3, block=8)
    assert len(source) == 20 and source.classes == ["a", "b", "c", "d"]
    assert source.name == "generated"
    np.testing.assert_array_equal(np.bincount(source.labels()), [5, 5, 5, 5])
    for i in range(len(source)):
        item = source[i]
        assert item["label"] == source.labels()[i] == i % 4
        assert item["image"].dtype == np.float32 and item["image"].shape == (6, 6, 3)
        assert item["seg"] is None and item["depth"] is None
        # the generator was asked for this item's label
        assert round(float(item["image"][0, 0, 0]) * 4) == item["label"]
    with pytest.raises(WorkbenchError, match="num must be positive"):
        GeneratedSource(gen, num=0)


def test_generated_source_is_deterministic_per_index():
    forward = GeneratedSource(FakeGenerator(), num=21, seed=7, block=5)
    backward = GeneratedSource(FakeGenerator(), num=21, seed=7, block=5)
    images = [forward[i]["image"] for i in range(21)]
    for i in reversed(range(21)):
        np.testing.assert_array_equal(backward[i]["image"], images[i])
    # revisiting an index after other blocks gives the same image again
    np.testing.assert_array_equal(forward[2]["image"], images[2])
    other = GeneratedSource(FakeGenerator(), num=21, seed=8, block=5)
    assert not np.array_equal(other[2]["image"], images[2])
    # items within a block differ from one another
    assert not np.array_equal(images[0][..., 1:], images[4][..., 1:])


def test_generated_source_generates_in_cached_blocks():
    gen = FakeGenerator()
    source = GeneratedSource(gen, num=10, seed=2, block=4)
    for i in range(4):
        source[i]
    assert len(gen.calls) == 1  # one call for the whole first block
    source[5]
    source[4]
    source[7]
    assert len(gen.calls) == 2
    source[9]
    assert len(gen.calls) == 3
    # blocks ask for their items' labels, the last block is short, every block has its own seed
    assert [labels for labels, _ in gen.calls] == [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1]]
    assert len({seed for _, seed in gen.calls}) == 3
