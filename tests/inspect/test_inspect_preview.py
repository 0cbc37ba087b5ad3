"""Spec editing, the preview worker (same pixels as ``workbench render``), sample views, and the
checks before a background render (its progress and cancel are driven through the app in
tests/app/test_generate_page.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.cli import SCENES_DIR
from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.inspect.preview import (
    PreviewRenderer,
    apply_overrides,
    colorize_depth,
    range_fields,
    sample_views,
    start_render,
)
from workbench.scene.spec import load_spec, parse_spec


@pytest.fixture(scope="module")
def renderer():
    worker = PreviewRenderer()
    yield worker
    worker.close()


def test_ranges_are_listed_and_overrides_validated():
    spec = load_spec(SCENES_DIR / "digits.yaml")
    fields = {f.key: f for f in range_fields(spec)}
    assert (fields["camera.distance"].low, fields["camera.distance"].high) == (2.3, 3.2)
    assert fields["distractors"].integer and fields["distractors"].step == 1
    for field in fields.values():
        assert field.bounds[0] <= field.low <= field.high <= field.bounds[1]
    edited = apply_overrides(spec, {"camera.distance": (2.0, 2.5), "resolution": 16})
    assert edited.camera.distance == (2.0, 2.5) and edited.resolution == 16
    assert spec.camera.distance == (2.3, 3.2)
    with pytest.raises(WorkbenchError, match="camera.distance"):
        apply_overrides(spec, {"camera.distance": (3.0, 2.0)})
    with pytest.raises(WorkbenchError, match="no such field"):
        apply_overrides(spec, {"camera.zoom": (1, 2)})


def test_preview_matches_the_rendered_dataset(renderer, rendered_dir):
    manifest = json.loads((rendered_dir / "manifest.json").read_text())
    spec = parse_spec(manifest["spec"])
    sample = renderer.render(spec, manifest["seed"], 3)
    stored = open_dataset(rendered_dir)[3]
    for name in ("rgb", "depth", "seg", "inst"):
        np.testing.assert_array_equal(sample.arrays[name], stored[name])
    assert sample.meta["label"] == stored["meta"]["label"]
    views = sample_views(sample.arrays, sample.meta, size=64)
    assert set(views) == {"rgb", "depth", "segmentation", "instances", "boxes"}
    for image in views.values():
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and image.std() > 0
    with pytest.raises(WorkbenchError, match="condition"):
        renderer.render(spec, 0, 0, "blizzard")


def test_depth_colours_leave_misses_black():
    depth = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    colours = colorize_depth(depth)
    assert (colours[0, 0] == 0).all() and (colours[1:, :] > 0).any(axis=-1).all()
    assert not np.array_equal(colours[0, 1], colours[1, 1])


def test_a_render_refuses_escapes_and_bad_counts(tmp_path):
    spec = load_spec(SCENES_DIR / "digits.yaml")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_render(tmp_path, spec, "../escape", num=1)
    with pytest.raises(WorkbenchError, match="at least 1"):
        start_render(tmp_path, spec, "data", num=0)
    assert not (tmp_path / "data").exists()
