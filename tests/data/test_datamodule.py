"""The mixing DataModule: harmonisation, source specs, split hygiene, weights, sampler, augment."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler

from tests.conftest import RENDERED_DIGITS
from workbench.data.augment import AugmentOptions, BatchAugment, build_augment
from workbench.data.datamodule import MixedDataModule, MixedSampler, Subset
from workbench.data.sources import (
    SOURCE_KINDS,
    DigitsSource,
    GeneratedSource,
    ImageFolderSource,
    SourceSpec,
    content_hash,
    digits_split_indices,
)
from workbench.data.transforms import harmonise
from workbench.errors import WorkbenchError

DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def digit_parts():
    return digits_split_indices()


def write_folder(root, counts: dict[str, int], seed: int = 0, size: int = 8):
    """Writes ``counts[class]`` random 8-bit grayscale PNGs per class folder; returns root."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size, size), np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i:03d}.png")
    return root


def part_of(dm: MixedDataModule, split: str, name: str):
    """Returns the source view of ``name`` in a split of a set-up DataModule, or None."""
    for sid, part in dm.datasets[split].parts:
        if dm.source_names[sid] == name:
            return part
    return None


def draws(dm: MixedDataModule) -> np.ndarray:
    """Returns the dataset indices the training sampler draws in one epoch."""
    return np.array(list(dm.train_dataloader().sampler))


# --- harmonise -----------------------------------------------------------------------------------


def test_harmonise_gray_to_three_channels_repeats():
    rng = np.random.default_rng(0)
    image = rng.random((8, 8, 1)).astype(np.float32)
    out = harmonise({"image": image, "label": 4}, size=8, channels=3)
    assert out["image"].shape == (3, 8, 8) and out["image"].dtype == torch.float32
    for c in range(3):
        np.testing.assert_allclose(out["image"][c].numpy(), image[..., 0])
    assert out["label"].dtype == torch.long and int(out["label"]) == 4
    # and an upsampled gray image keeps three identical channels
    up = harmonise({"image": image, "label": 4}, size=32, channels=3)["image"]
    assert up.shape == (3, 32, 32)
    assert torch.equal(up[0], up[1]) and torch.equal(up[1], up[2])
    assert 0.0 <= up.min() and up.max() <= 1.0


def test_harmonise_rgb_to_one_channel_by_luminance():
    colour = np.array([0.2, 0.6, 0.9], np.float32)
    image = np.broadcast_to(colour, (10, 12, 3)).copy()
    expected = 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 0.9
    for size in (10, 16):
        out = harmonise({"image": image, "label": 0}, size=size, channels=1)["image"]
        assert out.shape == (1, size, size)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    # pure red, green, blue give the three weights
    for channel, weight in enumerate((0.299, 0.587, 0.114)):
        pure = np.zeros((4, 4, 3), np.float32)
        pure[..., channel] = 1.0
        out = harmonise({"image": pure, "label": 0}, size=4, channels=1)["image"]
        np.testing.assert_allclose(out.numpy(), weight, atol=1e-6)


def test_harmonise_resizes_seg_with_nearest_and_fills_missing_labels():
    rng = np.random.default_rng(1)
    seg = rng.choice([0, 3, 7], size=(8, 8)).astype(np.int64)
    depth = rng.random((8, 8)).astype(np.float32) * 5
    item = {"image": np.zeros((8, 8, 3), np.float32), "label": 2, "seg": seg, "depth": depth}
    out = harmonise(item, size=32, channels=3)
    assert out["seg"].shape == (32, 32) and out["seg"].dtype == torch.long
    assert out["depth"].shape == (32, 32) and out["depth"].dtype == torch.float32
    # an integer upscale by nearest neighbour repeats every pixel as a 4 x 4 block
    np.testing.assert_array_equal(out["seg"].numpy(), np.kron(seg, np.ones((4, 4), np.int64)))
    np.testing.assert_allclose(out["depth"].numpy(), np.kron(depth, np.ones((4, 4))), rtol=1e-6)
    # a non-integer downscale still makes no new label values
    big = rng.choice([0, 1, 5, 9], size=(37, 29)).astype(np.int64)
    small = harmonise({"image": np.zeros((37, 29, 1), np.float32), "label": 0, "seg": big}, 16, 1)
    assert set(small["seg"].unique().tolist()) <= {0, 1, 5, 9}
    # missing labels: seg -1 (no label), depth 0 (unknown)
    bare = harmonise({"image": np.zeros((5, 5, 1), np.float32), "label": 1}, size=12, channels=1)
    assert bare["seg"].dtype == torch.long and bool((bare["seg"] == -1).all())
    assert bare["depth"].dtype == torch.float32 and bool((bare["depth"] == 0).all())
    none = harmonise(
        {"image": np.zeros((5, 5, 1), np.float32), "label": 1, "seg": None, "depth": None}, 12, 1
    )
    assert bool((none["seg"] == -1).all()) and bool((none["depth"] == 0).all())


# --- batches -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(rendered_dir):
    dm = MixedDataModule(
        [
            {"kind": "digits"},
            {"kind": "rendered", "path": str(rendered_dir), "name": "render"},
        ],
        image_size=16,
        channels=3,
        batch_size=128,
        seed=0,
    )
    dm.setup("fit")
    return dm


def test_batches_have_the_documented_keys_dtypes_and_shapes(mixed):
    assert mixed.source_names == ["digits", "render"]
    assert mixed.classes == DIGITS and mixed.num_classes == 10
    assert mixed.channels == 3 and mixed.image_size == 16
    batch = next(iter(mixed.train_dataloader()))
    assert set(batch) == {"image", "label", "source", "seg", "depth"}
    assert batch["image"].shape == (128, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (128,) and batch["label"].dtype == torch.long
    assert batch["source"].shape == (128,) and batch["source"].dtype == torch.long
    assert batch["seg"].shape == (128, 16, 16) and batch["seg"].dtype == torch.long
    assert batch["depth"].shape == (128, 16, 16) and batch["depth"].dtype == torch.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert set(batch["label"].tolist()) <= set(range(10))
    assert set(batch["source"].tolist()) == {0, 1}


def test_source_tags_and_dense_labels_follow_the_source(mixed):
    batch = next(iter(mixed.train_dataloader()))
    natural = batch["source"] == mixed.source_names.index("digits")
    rendered = batch["source"] == mixed.source_names.index("render")
    assert natural.any() and rendered.any()
    assert bool((batch["seg"][natural] == -1).all())
    assert bool((batch["depth"][natural] == 0).all())
    assert bool((batch["seg"][rendered] >= 0).all())
    assert bool((batch["seg"][rendered] <= 10).all())
    # every rendered item shows its own class (label + 1) somewhere in its seg map
    for seg, label in zip(batch["seg"][rendered], batch["label"][rendered], strict=True):
        assert set(seg.unique().tolist()) <= {0, int(label) + 1}
    assert bool((batch["depth"][rendered] > 0).any())
    # the tag of every sampled item is the source the sampler drew it from
    indices = np.array(list(mixed.train_dataloader().sampler))[:128]
    np.testing.assert_array_equal(
        batch["source"].numpy(), mixed.datasets["train"].source_ids()[indices]
    )
    for split in ("val", "test"):
        eval_batch = next(iter(getattr(mixed, f"{split}_dataloader")()))
        assert set(eval_batch) == {"image", "label", "source", "seg", "depth"}
        natural = eval_batch["source"] == 0
        assert bool((eval_batch["seg"][natural] == -1).all())


def test_digits_items_are_harmonised_from_their_native_pixels():
    dm = MixedDataModule([{"kind": "digits"}], image_size=8, channels=1, cache=False)
    dm.setup("fit")
    test = DigitsSource("test")
    item = dm.datasets["test"][3]
    np.testing.assert_allclose(item["image"][0].numpy(), test[3]["image"][..., 0])
    assert int(item["label"]) == test[3]["label"] and int(item["source"]) == 0


# --- specs and errors ----------------------------------------------------------------------------


def test_class_name_mismatch_shows_both_lists(tmp_path):
    folder = write_folder(tmp_path / "letters", {"a": 2, "b": 2})
    with pytest.raises(WorkbenchError, match="class names differ") as info:
        MixedDataModule([{"kind": "digits"}, {"kind": "imagefolder", "path": str(folder)}])
    message = str(info.value)
    assert str(DIGITS) in message and "['a', 'b']" in message
    # a source is named after its kind unless the spec names it
    assert "digits has" in message and "imagefolder has" in message


def test_duplicate_source_names_are_an_error(tmp_path):
    with pytest.raises(WorkbenchError, match="names must differ"):
        MixedDataModule([{"kind": "digits"}, {"kind": "digits"}])
    folder = write_folder(tmp_path / "f", {d: 1 for d in DIGITS})
    with pytest.raises(WorkbenchError, match="names must differ"):
        MixedDataModule(
            [{"kind": "digits"}, {"kind": "imagefolder", "path": str(folder), "name": "digits"}]
        )


def test_unknown_kind_lists_the_known_kinds():
    with pytest.raises(WorkbenchError, match="unknown source kind 'webcam'") as info:
        MixedDataModule([{"kind": "webcam"}])
    assert "digits, generated, imagefolder, pseudo, rendered" in str(info.value)


def test_other_spec_errors(tmp_path):
    with pytest.raises(WorkbenchError, match="needs a path"):
        MixedDataModule([{"kind": "imagefolder"}])
    folder = write_folder(tmp_path / "f", {d: 1 for d in DIGITS})
    with pytest.raises(WorkbenchError, match="role must be train or test"):
        MixedDataModule([{"kind": "imagefolder", "path": str(folder), "role": "val"}])
    with pytest.raises(WorkbenchError, match="at least one source"):
        MixedDataModule([])
    with pytest.raises(WorkbenchError, match="must be 1 or 3"):
        MixedDataModule([{"kind": "digits"}], channels=2)
    only_test = MixedDataModule([{"kind": "imagefolder", "path": str(folder), "role": "test"}])
    with pytest.raises(WorkbenchError, match="no source contributes training data"):
        only_test.setup("fit")


def test_specs_may_be_dataclasses_or_dicts():
    a = MixedDataModule([SourceSpec(kind="digits", per_class=2)], val_fraction=0.0)
    b = MixedDataModule([{"kind": "digits", "per_class": 2}], val_fraction=0.0)
    a.setup("fit")
    b.setup("fit")
    assert a.split_report == b.split_report
    assert a.split_report["train"] == {"digits": 20}


# --- split hygiene -------------------------------------------------------------------------------


def test_split_report_lists_counts_and_a_passed_leak_check(rendered_dir, digit_parts):
    dm = MixedDataModule(
        [{"kind": "digits"}, {"kind": "rendered", "path": str(rendered_dir), "name": "render"}],
        val_fraction=0.25,
    )
    assert dm.split_report == {}  # filled in by setup
    dm.setup("fit")
    report = dm.split_report
    assert set(report) == {"train", "val", "test", "leak_check"}
    assert report["train"]["digits"] == len(digit_parts["train"])
    assert report["val"]["digits"] == len(digit_parts["val"])
    assert report["test"] == {"digits": len(digit_parts["test"])}
    assert report["train"]["render"] + report["val"]["render"] == RENDERED_DIGITS
    assert report["val"]["render"] > 0
    assert report["leak_check"].startswith("passed")
    total = sum(report[s][n] for s in ("train", "val") for n in report[s])
    assert str(total) in report["leak_check"]
    for split in ("train", "val", "test"):
        assert len(dm.datasets[split]) == sum(report[split].values())


def test_digits_test_images_in_a_training_folder_are_a_leak(tmp_path):
    """The natural digits' test images, saved as 8-bit grayscale PNGs into a training pool."""
    test = DigitsSource("test")
    root = tmp_path / "copied"
    labels = test.labels()
    chosen = [i for c in range(10) for i in np.flatnonzero(labels == c)[:2]]
    for i in chosen:
        pixels = (test[i]["image"][..., 0] * 255).round().astype(np.uint8)
        (root / str(labels[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "L").save(root / str(labels[i]) / f"{i:04d}.png")
    # the files hold exactly the quantised pixels the content hash compares
    folder = ImageFolderSource(root)
    assert len(folder) == 20
    test_hashes = {content_hash(test[i]["image"]): i for i in range(len(test))}
    for j in range(len(folder)):
        image = folder[j]["image"]
        assert content_hash(image[..., :1]) in test_hashes
        np.testing.assert_array_equal(image[..., 0], image[..., 1])
    dm = MixedDataModule(
        [{"kind": "digits"}, {"kind": "imagefolder", "path": str(root), "name": "copied"}]
    )
    with pytest.raises(WorkbenchError, match="split leak"):
        dm.setup("fit")


def test_a_training_image_in_a_test_folder_is_a_leak(tmp_path):
    train = write_folder(tmp_path / "pool", {d: 3 for d in DIGITS}, seed=5)
    held = write_folder(tmp_path / "held", {d: 2 for d in DIGITS}, seed=6)
    (held / "7" / "copy.png").write_bytes((train / "3" / "001.png").read_bytes())
    specs = [
        {"kind": "imagefolder", "path": str(train), "name": "pool"},
        {"kind": "imagefolder", "path": str(held), "name": "held", "role": "test"},
    ]
    with pytest.raises(WorkbenchError, match="split leak: test item .* of held equals") as info:
        MixedDataModule(specs).setup("fit")
    assert "of pool" in str(info.value)
    # the same folders without the copy pass
    (held / "7" / "copy.png").unlink()
    dm = MixedDataModule(specs)
    dm.setup("fit")
    assert dm.split_report["test"] == {"held": 20}
    assert dm.split_report["leak_check"].startswith("passed")


# --- validation out of the training pool ---------------------------------------------------------


def _pool_split(folder, fraction: float, seed: int):
    dm = MixedDataModule(
        [{"kind": "digits"}, {"kind": "imagefolder", "path": str(folder), "name": "pool"}],
        val_fraction=fraction,
        seed=seed,
    )
    dm.setup("fit")
    return dm, part_of(dm, "train", "pool"), part_of(dm, "val", "pool")


def test_validation_comes_out_of_the_training_pool(tmp_path, digit_parts):
    folder = write_folder(tmp_path / "pool", {d: 10 for d in DIGITS})
    dm, train, val = _pool_split(folder, 0.2, seed=4)
    assert isinstance(train, Subset) and isinstance(val, Subset)
    assert train.source is val.source
    train_idx, val_idx = set(train.indices.tolist()), set(val.indices.tolist())
    assert not train_idx & val_idx
    assert train_idx | val_idx == set(range(100))
    # stratified: exactly 20% of every class
    np.testing.assert_array_equal(np.bincount(val.labels(), minlength=10), [2] * 10)
    np.testing.assert_array_equal(np.bincount(train.labels(), minlength=10), [8] * 10)
    # the natural digits keep their own validation split
    assert len(part_of(dm, "val", "digits")) == len(digit_parts["val"])
    assert len(part_of(dm, "train", "digits")) == len(digit_parts["train"])
    # deterministic in the seed
    _, train_again, val_again = _pool_split(folder, 0.2, seed=4)
    np.testing.assert_array_equal(val.indices, val_again.indices)
    np.testing.assert_array_equal(train.indices, train_again.indices)
    _, _, val_other = _pool_split(folder, 0.2, seed=5)
    assert not np.array_equal(val.indices, val_other.indices)
    # no fraction, no validation from the pool
    _, train_all, val_none = _pool_split(folder, 0.0, seed=4)
    assert len(train_all) == 100 and val_none is None


def test_per_class_keeps_that_many_training_items_per_class(tmp_path):
    """``per_class`` is the number of *training* items per class, for every kind of source."""
    folder = write_folder(tmp_path / "pool", {d: 10 for d in DIGITS})
    dm = MixedDataModule(
        [
            {"kind": "digits", "per_class": 5},
            {"kind": "imagefolder", "path": str(folder), "name": "pool", "per_class": 5},
        ],
        val_fraction=0.2,
    )
    dm.setup("fit")
    digits_train = part_of(dm, "train", "digits")
    np.testing.assert_array_equal(np.bincount(digits_train.labels(), minlength=10), [5] * 10)
    pool_train = part_of(dm, "train", "pool")
    np.testing.assert_array_equal(np.bincount(pool_train.labels(), minlength=10), [5] * 10)


# --- weights -------------------------------------------------------------------------------------


def test_train_weights_set_the_share_of_draws(rendered_dir):
    dm = MixedDataModule(
        [
            {"kind": "digits", "weights": {"train": 3.0}},
            {
                "kind": "rendered",
                "path": str(rendered_dir),
                "name": "render",
                "weights": {"train": 1.0},
            },
        ],
        epoch_size=40_000,
        batch_size=500,
        seed=1,
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader.sampler) == 40_000 and len(loader) == 80
    share = np.bincount(dm.datasets["train"].source_ids()[draws(dm)], minlength=2) / 40_000
    assert abs(share[0] - 0.75) < 0.02 and abs(share[1] - 0.25) < 0.02
    # without an epoch size an epoch is the training set's size
    plain = MixedDataModule([{"kind": "digits"}], val_fraction=0.0)
    plain.setup("fit")
    assert len(plain.train_dataloader().sampler) == len(plain.datasets["train"])


def test_weight_zero_leaves_a_source_out_of_a_split(tmp_path, digit_parts):
    held = write_folder(tmp_path / "held", {d: 2 for d in DIGITS}, seed=9)
    dm = MixedDataModule(
        [
            {"kind": "digits", "weights": {"train": 1.0, "val": 1.0, "test": 0.0}},
            {"kind": "imagefolder", "path": str(held), "name": "held", "role": "test"},
        ]
    )
    dm.setup("fit")
    assert dm.split_report["test"] == {"held": 20}
    assert len(dm.datasets["test"]) == 20
    assert set(dm.datasets["test"].source_ids().tolist()) == {1}
    assert dm.split_report["train"] == {"digits": len(digit_parts["train"])}
    assert dm.split_report["val"] == {"digits": len(digit_parts["val"])}
    batch = next(iter(dm.test_dataloader()))
    assert set(batch["source"].tolist()) == {1}
    no_val = MixedDataModule([{"kind": "digits", "weights": {"val": 0.0}}])
    no_val.setup("fit")
    assert "digits" not in no_val.split_report["val"] and len(no_val.datasets["val"]) == 0


def test_balance_classes_equalises_class_frequencies(tmp_path):
    counts = {d: 3 for d in DIGITS}
    counts["0"] = 60
    folder = write_folder(tmp_path / "skewed", counts, seed=3)
    specs = [{"kind": "digits"}, {"kind": "imagefolder", "path": str(folder), "name": "skewed"}]
    frequencies = {}
    for balance in (False, True):
        dm = MixedDataModule(
            specs, balance_classes=balance, epoch_size=40_000, val_fraction=0.0, seed=2
        )
        dm.setup("fit")
        labels = dm.datasets["train"].labels()[draws(dm)]
        frequencies[balance] = np.bincount(labels, minlength=10) / len(labels)
    assert frequencies[False][0] > 0.3  # the skewed folder makes class 0 common
    np.testing.assert_allclose(frequencies[True], 0.1, atol=0.015)


# --- sampler -------------------------------------------------------------------------------------


def test_sampler_order_depends_on_seed_and_epoch():
    weights = np.arange(1, 51, dtype=np.float64)
    weights[7] = 0.0
    sampler = MixedSampler(weights, 200, seed=3)
    assert isinstance(sampler, DistributedSampler)
    assert len(sampler) == 200
    first = list(sampler)
    assert len(first) == 200 and all(0 <= i < 50 for i in first) and 7 not in first
    assert list(sampler) == first
    assert list(MixedSampler(weights, 200, seed=3)) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and len(second) == 200
    again = MixedSampler(weights, 200, seed=3)
    again.set_epoch(1)
    assert list(again) == second
    assert list(MixedSampler(weights, 200, seed=4)) != first


def test_sampler_ranks_take_disjoint_shares_of_the_draws():
    weights = np.ones(30)
    full = list(MixedSampler(weights, 100, seed=11))
    shares = []
    for rank in (0, 1):
        sampler = MixedSampler(weights, 100, seed=11)
        sampler.num_replicas, sampler.rank, sampler.num_samples = 2, rank, 50
        sampler.set_epoch(0)
        shares.append(list(sampler))
        assert len(sampler) == 50 and len(shares[-1]) == 50
    # rank r takes draws r, r + 2, r + 4, ...: disjoint positions that together cover all
    assert shares[0] == full[0::2] and shares[1] == full[1::2]
    interleaved = [i for pair in zip(shares[0], shares[1], strict=True) for i in pair]
    assert interleaved == full


def test_training_loader_is_deterministic_in_the_seed():
    def first_batch(seed):
        dm = MixedDataModule([{"kind": "digits"}], batch_size=32, seed=seed)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))

    a, b, c = first_batch(0), first_batch(0), first_batch(1)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


# --- generated sources in a mix ------------------------------------------------------------------


class ConstantGenerator:
    classes = DIGITS

    def generate(self, labels, seed):
        rng = np.random.default_rng(seed)
        return rng.random((len(labels), 10, 10, 3)).astype(np.float32)


def test_a_registered_generated_kind_joins_the_mix(monkeypatch):
    def build(spec: SourceSpec):
        return {"train": GeneratedSource(ConstantGenerator(), spec.num or 10, name="gen")}

    monkeypatch.setitem(SOURCE_KINDS._entries, "fakegen", build)
    monkeypatch.setitem(SOURCE_KINDS._metadata, "fakegen", {})
    dm = MixedDataModule(
        [{"kind": "digits", "per_class": 1}, {"kind": "fakegen", "num": 50}],
        image_size=12,
        channels=1,
        val_fraction=0.2,
        batch_size=64,
        epoch_size=64,
    )
    dm.setup("fit")
    assert dm.source_names == ["digits", "fakegen"]
    assert dm.split_report["train"]["fakegen"] == 40
    assert dm.split_report["val"]["fakegen"] == 10
    batch = next(iter(dm.train_dataloader()))
    generated = batch["source"] == 1
    assert generated.any()
    assert batch["image"].shape == (64, 1, 12, 12)
    assert bool((batch["seg"][generated] == -1).all())


# --- augmentation --------------------------------------------------------------------------------


def synthetic_batch(size: int = 32) -> dict[str, torch.Tensor]:
    """Bright rectangles labelled in seg (image == seg > 0), plus unlabelled and blank items."""
    batch_size = 10
    seg = torch.zeros(batch_size, size, size, dtype=torch.long)
    for i in range(8):
        top, left = 3 + i, 4 + (i * 3) % 10
        seg[i, top : top + 14, left : left + 6 + i] = i % 9 + 1
        seg[i, top + 2 : top + 5, left : left + 16] = i % 9 + 1
    seg[8] = -1  # an item without segmentation (a natural image)
    seg[9] = 0  # all background
    image = (seg > 0).float()[:, None].repeat(1, 3, 1, 1)
    image[8] = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    depth = (seg > 0).float() * 2.5
    return {
        "image": image,
        "seg": seg,
        "depth": depth,
        "label": torch.arange(batch_size) % 10,
        "source": torch.zeros(batch_size, dtype=torch.long),
    }


def test_build_augment_options():
    parameters = inspect.signature(build_augment).parameters
    assert {"degrees", "translate", "p"} <= set(parameters)
    assert build_augment().geometric is None and build_augment().photometric is None
    augment = build_augment(degrees=30, translate=0.1, p=1.0)
    assert isinstance(augment, BatchAugment) and augment.geometric is not None
    assert build_augment(brightness=0.2).photometric is not None


@pytest.mark.parametrize(
    "options, message",
    [
        ({"degress": 3}, "degress: not an option; allowed: degrees, translate, scale"),
        ({"degrees": -1}, "degrees: Input should be greater than or equal to 0"),
        ({"p": 1.5}, "p: Input should be less than or equal to 1"),
        ({"scale": [1.1, 0.9]}, "scale: needs low <= high, got [1.1, 0.9]"),
        ({"hflip": "yes"}, "hflip: Input should be a valid boolean"),
    ],
)
def test_bad_augment_options_name_the_field(options, message):
    # the library names the option; the DataModule adds where the config sets it
    with pytest.raises(WorkbenchError) as error:
        AugmentOptions.from_dict(options)
    assert str(error.value).startswith(message)
    if "degress" not in options:
        with pytest.raises(WorkbenchError, match=f"^{message.split(':')[0]}: "):
            build_augment(**options)
    dm = MixedDataModule([{"kind": "digits"}], image_size=8, augment=options)
    with pytest.raises(WorkbenchError) as error:
        dm.setup("fit")
    assert str(error.value).startswith(f"data.augment.{message}")


def test_geometric_augmentation_moves_image_seg_and_depth_together():
    torch.manual_seed(0)
    batch = synthetic_batch()
    out = build_augment(degrees=30, translate=0.1, p=1.0)(batch)
    assert set(out) == set(batch)
    assert out["image"].shape == batch["image"].shape
    assert out["seg"].shape == batch["seg"].shape and out["seg"].dtype == torch.long
    assert out["depth"].shape == batch["depth"].shape
    assert torch.equal(out["label"], batch["label"])
    assert 0.0 <= out["image"].min() and out["image"].max() <= 1.0
    moved = 0
    for i in range(8):
        seg, image = out["seg"][i], out["image"][i]
        moved += int(not torch.equal(seg, batch["seg"][i]))
        agree = ((image[0] > 0.5) == (seg > 0)).float().mean().item()
        assert agree > 0.95, (i, agree)
        assert ((out["depth"][i] > 1.25) == (seg > 0)).float().mean().item() > 0.95
        # nearest resampling: no new label values
        assert set(seg.unique().tolist()) <= {-1, 0, i % 9 + 1}
    assert moved >= 7  # p=1: the transform really moved things
    # padding is "no label" (-1), never background (0); unlabelled items stay unlabelled
    assert bool((out["seg"][:8] == -1).any())
    assert bool((out["seg"][8] == -1).all())
    blank = out["seg"][9]
    assert set(blank.unique().tolist()) == {-1, 0}
    assert bool((out["depth"][9] == 0).all())


def test_datamodule_augments_training_batches_only(rendered_dir):
    dm = MixedDataModule(
        [{"kind": "digits"}, {"kind": "rendered", "path": str(rendered_dir), "name": "render"}],
        image_size=16,
        batch_size=64,
        augment={"degrees": 30, "translate": 0.1, "p": 1.0},
    )
    dm.setup("fit")
    assert isinstance(dm._augment, BatchAugment)
    batch = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=False)
    assert dm.on_after_batch_transfer(dict(batch), 0)["image"] is batch["image"]
    dm.trainer = SimpleNamespace(training=True)
    torch.manual_seed(0)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert not torch.equal(out["image"], batch["image"])
    assert out["image"].shape == batch["image"].shape
    natural = batch["source"] == 0
    assert natural.any() and bool((out["seg"][natural] == -1).all())
    rendered = ~natural
    assert rendered.any() and bool((out["seg"][rendered] <= 10).all())
    # a rendered glyph keeps its own class after the transform
    for seg, label in zip(out["seg"][rendered], batch["label"][rendered], strict=True):
        assert set(seg.unique().tolist()) <= {-1, 0, int(label) + 1}
