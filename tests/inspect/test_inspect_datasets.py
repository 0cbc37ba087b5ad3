"""Dataset discovery, the sample index and its filters, statistics, paired views, and one-line
errors for corrupt files, on the session's rendered digits."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.conftest import RENDERED_DIGITS
from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.inspect.datasets import (
    filter_rows,
    find_datasets,
    find_paired,
    load_sample,
    manifest_stamp,
    open_under,
    paired_rgb,
    sample_rows,
    statistics,
)


@pytest.fixture
def root(tmp_path, rendered_dir):
    """A data root with a copy of the rendered digits and a paired set made of two copies."""
    shutil.copytree(rendered_dir, tmp_path / "digits")
    pairs = tmp_path / "pairs"
    for name in ("clone", "fog"):
        shutil.copytree(rendered_dir, pairs / name)
    (pairs / "conditions.json").write_text(json.dumps({"conditions": ["clone", "fog"]}))
    return tmp_path


def test_datasets_are_found_with_their_manifest_facts(root):
    found = {d.path: d for d in find_datasets(root)}
    assert set(found) == {"digits", "pairs/clone", "pairs/fog"}
    digits = found["digits"]
    assert (digits.kind, digits.num_samples, digits.complete) == ("digits", RENDERED_DIGITS, True)
    assert digits.group is None and found["pairs/fog"].group == "pairs"
    assert find_paired(root) == ["pairs"]


def test_index_rows_match_the_sample_files_and_filter(root, rendered_dir):
    rows = sample_rows(root, ["digits"])
    assert len(rows) == RENDERED_DIGITS
    assert [r["label"] for r in rows] == open_dataset(rendered_dir).labels()
    one_class = rows[0]["class"]
    kept = filter_rows(rows, classes=[one_class])
    assert kept and all(r["class"] == one_class for r in kept)
    assert len(kept) == sum(r["class"] == one_class for r in rows)
    middle = sorted(r["difficulty"] for r in rows)[len(rows) // 2]
    easy = filter_rows(rows, difficulty=(0.0, middle))
    assert 0 < len(easy) < len(rows) and all(r["difficulty"] <= middle for r in easy)
    assert filter_rows(rows, conditions=["fog"]) == []
    assert len(filter_rows(rows, sources=["digits"], conditions=["clone"])) == len(rows)


def test_statistics_count_every_sample_and_the_depth_range(root, rendered_dir):
    rows = sample_rows(root, ["digits"])
    summary = statistics(root, rows)
    assert summary["count"] == RENDERED_DIGITS
    assert sum(summary["classes"].values()) == RENDERED_DIGITS
    assert sum(summary["difficulty"]["counts"]) == RENDERED_DIGITS
    assert len(summary["difficulty"]["labels"]) == len(summary["difficulty"]["counts"])
    depths = np.concatenate([s["depth"][s["depth"] > 0] for s in open_dataset(rendered_dir)])
    assert summary["depth"]["min"] == pytest.approx(depths.min())
    assert summary["depth"]["max"] == pytest.approx(depths.max())


def test_paired_view_shows_the_same_sample_per_condition(root, rendered_dir):
    images = paired_rgb(root, "pairs", 5)
    assert list(images) == ["clone", "fog"]
    np.testing.assert_array_equal(images["fog"], open_dataset(rendered_dir)[5]["rgb"])
    with pytest.raises(WorkbenchError, match="no conditions.json"):
        paired_rgb(root, "digits", 0)
    with pytest.raises(WorkbenchError, match="outside the data root"):
        paired_rgb(root, "..", 0)


def test_corrupt_files_give_one_line_errors(root):
    dataset = open_under(root, "digits")
    (root / "digits" / "shards" / "000000" / "000002.rgb.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(WorkbenchError, match="sample 2 is unreadable") as info:
        load_sample(dataset, 2)
    assert "\n" not in str(info.value)
    load_sample(dataset, 3)  # the others still load
    with pytest.raises(WorkbenchError, match="out of range"):
        load_sample(dataset, RENDERED_DIGITS)
    (root / "pairs" / "fog" / "manifest.json").write_text("{not json")
    found = {d.path: d for d in find_datasets(root)}
    assert "unreadable manifest.json" in found["pairs/fog"].problem
    with pytest.raises(WorkbenchError, match="unreadable manifest"):
        open_under(root, "pairs/fog")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        open_under(root / "digits", "../pairs/clone")


def test_the_manifest_stamp_changes_when_a_dataset_is_rewritten(root):
    before = manifest_stamp(root, "digits")
    manifest = root / "digits" / "manifest.json"
    manifest.write_text(manifest.read_text())
    os.utime(manifest, (before + 5, before + 5))
    assert manifest_stamp(root, "digits") == before + 5
    assert manifest_stamp(root, "nothing") == 0.0 and manifest_stamp(root, "../..") == 0.0
