"""The pyrender passes and labels on hand-made scenes with known answers."""

import numpy as np
import pytest

from workbench.render import gl

gl.activate("egl")

from workbench.render.conditions import CONDITIONS, fog
from workbench.render.sample import render_sample
from workbench.render.view import Renderer
from workbench.scene import assets
from workbench.scene.model import Background, Camera, Light, Material, SceneInstance, SceneObject
from workbench.scene.random import look_at
from workbench.scene.spec import parse_spec


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(64, 64)
    yield r
    r.close()


def _cube(x, y, class_id, name):
    pose = np.eye(4)
    pose[:3, 3] = [x, y, 0]
    return SceneObject(
        name=name,
        class_id=class_id,
        mesh=assets.primitive("cube"),
        pose=pose,
        material=Material((0.8, 0.2, 0.2)),
    )


def _scene(objects):
    camera = Camera(
        yfov=np.radians(40), pose=look_at([0, -6, 0.5], [0, 0, 0.5]), width=64, height=64
    )
    sun = Light("directional", (1, 1, 1), 3.0, look_at([2, -4, 5], [0, 0, 0]), role="sun")
    return SceneInstance(
        objects=objects,
        lights=[sun],
        camera=camera,
        ambient=(0.3, 0.3, 0.3),
        background=Background((0.1, 0.2, 0.3)),
    )


def test_occluded_cube_has_partial_visible_fraction(renderer):
    front, back = _cube(0.0, 0.0, 0, "front"), _cube(0.5, 2.0, 1, "back")
    passes = renderer.render(_scene([front, back]))
    inst, seg, depth = passes["inst"], passes["seg"], passes["depth"]
    assert set(np.unique(inst)) == {0, 1, 2}
    assert set(np.unique(seg)) == {0, 1, 2}
    assert np.array_equal(seg == 1, inst == 1)  # semantic id = class + 1
    visible_back = np.count_nonzero(inst == 2)
    assert 0 < visible_back < passes["unoccluded"][2]
    assert passes["unoccluded"][1] == np.count_nonzero(inst == 1)
    assert depth.dtype == np.float32 and (depth[inst == 0] == 0).all()
    # front face of the front cube is 5.5 m from the camera along its axis
    assert np.median(depth[inst == 1]) == pytest.approx(5.5, abs=0.15)


def test_alone_cube_needs_no_extra_pass_and_is_fully_visible(renderer):
    passes = renderer.render(_scene([_cube(-1.2, 0, 0, "a"), _cube(1.2, 0, 1, "b")]))
    assert passes["unoccluded"] == {
        1: np.count_nonzero(passes["inst"] == 1),
        2: np.count_nonzero(passes["inst"] == 2),
    }


def test_label_ids_are_exact_at_edges(renderer):
    spec = parse_spec({"kind": "shapes", "resolution": 64, "count": [6, 6]})
    for index in range(5):
        sample = render_sample(renderer, spec, 0, index)
        inst, seg = sample.arrays["inst"], sample.arrays["seg"]
        ids = {o["instance_id"]: o["class_id"] for o in sample.meta["objects"]}
        assert set(np.unique(inst)) <= {0, *ids}
        for inst_id, class_id in ids.items():
            assert (seg[inst == inst_id] == class_id + 1).all()
        for obj in sample.meta["objects"]:
            if obj["pixels"]:
                x0, y0, x1, y1 = obj["box"]
                ys, xs = np.nonzero(inst == obj["instance_id"])
                assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert 0.0 <= obj["visible_fraction"] <= 1.0


def test_shapes_label_is_the_most_visible_object(renderer):
    spec = parse_spec({"kind": "shapes", "resolution": 64})
    for index in range(8):
        meta = render_sample(renderer, spec, 1, index).meta
        best = max(meta["objects"], key=lambda o: o["pixels"])
        assert meta["label"] == best["class_id"]
        assert meta["label_name"] == spec.classes()[meta["label"]]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_conditions_keep_geometry_and_change_pixels(renderer, condition):
    spec = parse_spec({"kind": "shapes", "resolution": 64})
    base = render_sample(renderer, spec, 2, 0, "clone")
    other = render_sample(renderer, spec, 2, 0, condition)
    for name in ("depth", "seg", "inst"):
        assert np.array_equal(base.arrays[name], other.arrays[name])
    assert other.meta["condition"]["name"] == condition
    assert other.meta["factors"] == base.meta["factors"]
    if condition != "clone":
        assert not np.array_equal(base.arrays["rgb"], other.arrays["rgb"])


def test_night_is_darker_and_sunset_warmer_than_clone(renderer):
    spec = parse_spec(
        {"kind": "shapes", "resolution": 64, "background": {"photo_probability": 0.0}}
    )
    means = {
        c: np.mean(
            [
                render_sample(renderer, spec, 0, i, c).arrays["rgb"].reshape(-1, 3).mean(0)
                for i in range(4)
            ],
            0,
        )
        for c in ("clone", "night", "sunset")
    }
    assert means["night"].sum() < 0.5 * means["clone"].sum()
    assert means["sunset"][0] / means["sunset"][2] > means["clone"][0] / means["clone"][2]


def test_fog_follows_koschmieder_law():
    rgb = np.zeros((1, 3, 3))
    depth = np.array([[1.0, 10.0, 0.0]])
    out = fog(rgb, depth, beta=0.1, color=np.ones(3))
    assert out[0, 0, 0] == pytest.approx(1 - np.exp(-0.1))
    assert out[0, 1, 0] == pytest.approx(1 - np.exp(-1.0))
    assert out[0, 2, 0] == 1.0  # no surface: infinitely far, all fog


def test_fog_difficulty_grows_with_density(renderer):
    spec = parse_spec({"kind": "digits", "resolution": 64})
    clear = render_sample(renderer, spec, 0, 1, "clone").meta
    foggy = render_sample(renderer, spec, 0, 1, "fog").meta
    assert clear["difficulty_terms"]["fog"] == 0.0
    assert foggy["difficulty_terms"]["fog"] > 0.2
    assert foggy["difficulty"] > clear["difficulty"]
    assert foggy["condition"]["fog_beta"] > 0


def test_sample_json_carries_camera_and_factors(renderer):
    spec = parse_spec({"kind": "digits", "resolution": 64})
    meta = render_sample(renderer, spec, 5, 3).meta
    K = np.array(meta["camera"]["K"])
    assert K.shape == (3, 3) and K[0, 2] == 32
    assert np.array(meta["camera"]["pose"]).shape == (4, 4)
    for key in (
        "digit",
        "font",
        "yaw_deg",
        "material",
        "camera",
        "lights",
        "ambient",
        "background",
    ):
        assert key in meta["factors"]
    assert 0.0 <= meta["difficulty"] <= 1.0
    assert set(meta["difficulty_terms"]) == {
        "occlusion",
        "off_axis",
        "darkness",
        "fog",
        "smallness",
    }
