"""Label noise made on purpose, recorded in the split report, and exclude files read back."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data.datamodule import MixedDataModule, item_ids
from workbench.data.noise import DIGIT_CONFUSIONS, NoiseOptions, read_exclude
from workbench.errors import WorkbenchError

CLASSES = [str(d) for d in range(10)]


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["symmetric", "asymmetric", "pairflip"]),
    rate=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**31),
)
def test_flips_follow_their_kind_and_seed(kind, rate, seed):
    true = np.random.default_rng(1).integers(0, 10, 400)
    noise = NoiseOptions(kind=kind, rate=rate, seed=seed)
    given_ = noise.flip(true, CLASSES)
    assert np.array_equal(given_, noise.flip(true, CLASSES))  # deterministic in the seed
    changed = given_ != true
    if kind == "pairflip":
        assert (given_[changed] == (true[changed] + 1) % 10).all()
    if kind == "asymmetric":
        for t, g in zip(true[changed], given_[changed], strict=True):
            assert DIGIT_CONFUSIONS[str(t)] == str(g)


def test_symmetric_rate_is_the_noise_rate_and_never_keeps_the_class():
    true = np.random.default_rng(0).integers(0, 10, 20_000)
    given_ = NoiseOptions(kind="symmetric", rate=0.4, seed=3).flip(true, CLASSES)
    assert abs((given_ != true).mean() - 0.4) < 0.015
    counts = np.bincount(given_[given_ != true], minlength=10)  # spread over the other classes
    assert counts.min() > 0.8 * counts.mean()


def test_datamodule_records_the_flips_in_the_split_report():
    spec = {"kind": "digits", "name": "natural", "noise": {"kind": "symmetric", "rate": 0.3}}
    noisy = MixedDataModule([spec], image_size=8)
    clean = MixedDataModule([{"kind": "digits", "name": "natural"}], image_size=8)
    noisy.setup("fit"), clean.setup("fit")
    report = noisy.split_report["noise"]["natural"]
    given_, true = noisy.datasets["train"].labels(), clean.datasets["train"].labels()
    flipped = np.flatnonzero(given_ != true)
    assert [i for i, _, _ in report["flipped"]] == flipped.tolist()
    assert all(true[i] == t and given_[i] == g for i, t, g in report["flipped"])
    assert noisy.datasets["train"][int(flipped[0])]["label"] == given_[flipped[0]]
    # validation and test keep their labels (the digits have their own splits)
    assert np.array_equal(noisy.datasets["test"].labels(), clean.datasets["test"].labels())


def test_exclude_leaves_out_the_named_items(tmp_path):
    path = tmp_path / "exclude.json"
    path.write_text(json.dumps({"items": {"natural": [0, 5, 7]}}))
    data = MixedDataModule(
        [{"kind": "digits", "name": "natural", "exclude": str(path)}], image_size=8
    )
    data.setup("fit")
    ids = item_ids(data.datasets["train"].parts[0][1])
    assert len(ids) == 1259 - 3 and not {0, 5, 7} & set(ids.tolist())
    assert data.split_report["excluded"] == {"natural": 3}


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        ({"kind": "symmetric", "rate": 1.0}, r"data.sources\[0\].noise.rate: Input should be less"),
        ({"kind": "uniform", "rate": 0.1}, r"data.sources\[0\].noise.kind: Input should be"),
        ({"kind": "symmetric", "rate": 0.1, "sed": 1}, "noise.sed: not an option; allowed"),
        ({"kind": "asymmetric", "rate": 0.1, "pairs": {"cat": "dog"}}, "'cat', 'dog'"),
    ],
)
def test_bad_noise_is_one_line_naming_the_field(noise, message):
    with pytest.raises(WorkbenchError, match=message):
        MixedDataModule([{"kind": "digits", "name": "natural", "noise": noise}], image_size=8)


def test_bad_exclude_files_are_named(tmp_path):
    with pytest.raises(WorkbenchError, match="exclude file not found"):
        read_exclude(tmp_path / "none.json", "natural", 10)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(WorkbenchError, match="not an exclude file"):
        read_exclude(tmp_path / "bad.json", "natural", 10)
    (tmp_path / "far.json").write_text(json.dumps({"items": {"natural": [3, 12]}}))
    with pytest.raises(WorkbenchError, match=r"names items \[12\] of source 'natural'"):
        read_exclude(tmp_path / "far.json", "natural", 10)
