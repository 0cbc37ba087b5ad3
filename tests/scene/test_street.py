"""The ``street`` scene kind: determinism, layout invariants and what the renders show."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import MultiPoint

from workbench.render import gl
from workbench.scene.kinds import build_scene
from workbench.scene.spec import parse_spec

SEED = 7
INDICES = range(12)
# Cityscapes-like colours for the semantic ids 0 (background) .. 6 (vegetation)
PALETTE = np.array(
    [
        [0, 0, 0],
        [128, 64, 128],
        [244, 35, 232],
        [70, 70, 70],
        [153, 153, 153],
        [0, 0, 142],
        [107, 142, 35],
    ],
    np.uint8,
)


@pytest.fixture(scope="module")
def spec():
    return parse_spec({"kind": "street", "resolution": 96})


@pytest.fixture(scope="module")
def crowded():
    return parse_spec(
        {"kind": "street", "resolution": 96, "cars": [8, 8], "poles": [6, 6], "trees": [6, 6]}
    )


def _footprint(obj) -> shapely.Polygon:
    """World-space convex footprint of an object on the ground plane."""
    vertices = obj.mesh.vertices @ obj.pose[:3, :3].T + obj.pose[:3, 3]
    return MultiPoint(vertices[:, :2]).convex_hull


def _of_class(instance, classes, name):
    return [o for o in instance.objects if o.class_id == classes.index(name)]


@pytest.mark.parametrize("index", [0, 3, 11])
def test_deterministic(spec, index):
    a, b = build_scene(spec, SEED, index), build_scene(spec, SEED, index)
    np.testing.assert_equal(a.factors, b.factors)
    np.testing.assert_array_equal(a.camera.pose, b.camera.pose)
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    for x, y in zip(a.objects, b.objects, strict=True):
        np.testing.assert_array_equal(x.pose, y.pose)
        assert x.mesh_key == y.mesh_key
    other = build_scene(spec, SEED, index + 1)
    assert other.factors["cars"] != a.factors["cars"]


def test_factors_record_every_randomizer(spec):
    factors = build_scene(spec, SEED, 0).factors
    for key in (
        "road_width",
        "sidewalk_width",
        "buildings",
        "poles",
        "trees",
        "cars",
        "camera",
        "lights",
        "ambient",
        "background",
    ):
        assert key in factors
    for car in factors["cars"]:
        assert {"variant", "lane", "parked", "position", "yaw_deg", "material"} <= set(car)


@pytest.mark.parametrize("index", INDICES)
def test_classes_and_layout(crowded, index):
    instance = build_scene(crowded, SEED, index)
    classes = crowded.classes()
    assert {o.class_id for o in instance.objects} <= set(range(-1, len(classes)))
    assert instance.label is None and instance.sun is not None
    for name in ("road", "sidewalk", "building"):
        assert all(not o.thing for o in _of_class(instance, classes, name))
    for name in ("pole", "car", "vegetation"):
        assert all(o.thing for o in _of_class(instance, classes, name))
    cars = _of_class(instance, classes, "car")
    assert cars, "a crowded street places at least one car"
    half_road = instance.factors["road_width"] / 2
    for car in cars:
        x, y = car.pose[:2, 3]
        assert abs(x) < half_road and 6.0 <= y <= 70.0


@pytest.mark.parametrize("index", INDICES)
def test_cars_do_not_overlap(crowded, index):
    instance = build_scene(crowded, SEED, index)
    footprints = [_footprint(o) for o in _of_class(instance, crowded.classes(), "car")]
    for i, a in enumerate(footprints):
        for b in footprints[i + 1 :]:
            assert a.intersection(b).area < 1e-9


@pytest.mark.parametrize("index", INDICES)
def test_camera_in_right_lane(spec, index):
    instance = build_scene(spec, SEED, index)
    x, y, z = instance.camera.pose[:3, 3]
    lo, hi = spec.camera.height
    assert lo <= z <= hi and y == 0.0
    assert 0.0 < x < instance.factors["road_width"] / 2
    forward = -instance.camera.pose[:3, 2]
    assert forward[1] > 0.9  # looks down the road
    assert instance.camera.width == instance.camera.height == spec.resolution


def test_mesh_keys_name_one_geometry(spec):
    geometry: dict[str, np.ndarray] = {}
    for index in INDICES:
        for obj in build_scene(spec, SEED, index).objects:
            seen = geometry.setdefault(obj.mesh_key, obj.mesh.vertices)
            np.testing.assert_array_equal(seen, obj.mesh.vertices, err_msg=obj.mesh_key)


@pytest.fixture(scope="module")
def renderer():
    gl.choose(os.environ.get("PYOPENGL_PLATFORM", "egl"))
    from workbench.render.view import Renderer

    renderer = Renderer(96, 96)
    yield renderer
    renderer.close()


def test_renders_read_as_a_street(renderer, spec):
    from workbench.render.sample import render_sample

    classes = spec.classes()
    road, pole, car = (classes.index(n) + 1 for n in ("road", "pole", "car"))
    tiles = []
    for index in range(8):
        sample = render_sample(renderer, spec, SEED, index)
        seg = sample.arrays["seg"]
        if index < 4:
            assert (seg == road).mean() > 0.2
            assert (seg == car).any() or (seg == pole).any()
            assert 0 <= sample.meta["label"] < len(classes)
            assert (seg == 0).any(), "some sky is visible"
        tiles.append(np.concatenate([sample.arrays["rgb"], PALETTE[seg]], axis=0))
    sheet = Path(tempfile.gettempdir()) / "street_sheet.png"
    Image.fromarray(np.concatenate(tiles, axis=1)).save(sheet)


def test_fog_and_night(renderer, spec):
    from workbench.render.sample import render_sample
    from workbench.scene.conditions.effects import FOG_COLOR

    base = render_sample(renderer, spec, SEED, 1)
    clear = base.arrays["rgb"].astype(float)
    fog = render_sample(renderer, spec, SEED, 1, condition="fog").arrays["rgb"].astype(float)
    night = render_sample(renderer, spec, SEED, 1, condition="night").arrays["rgb"].astype(float)
    far = base.arrays["depth"] > np.median(base.arrays["depth"][base.arrays["depth"] > 0])
    haze = 255 * FOG_COLOR
    assert (
        np.abs(fog[far] - haze).mean() < 0.7 * np.abs(clear[far] - haze).mean()
    )  # far surfaces fade into fog
    assert night.mean() < 0.6 * clear.mean()
