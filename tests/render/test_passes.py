"""The pyrender passes and labels on hand-made scenes with known answers."""

# ruff: noqa: E402  (the GL backend is chosen before pyrender is imported)

import itertools

import numpy as np
import pytest

from workbench.render import gl

gl.activate("egl")

import pyrender

from tests.conftest import ROOT
from workbench.render.sample import render_sample
from workbench.render.view import Renderer
from workbench.scene import assets
from workbench.scene.kinds import build_scene
from workbench.scene.model import Background, Camera, Light, Material, SceneInstance, SceneObject
from workbench.scene.random import look_at
from workbench.scene.spec import load_spec, parse_spec


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


def _node_hash_by_light(order: list[float]):
    """A node hash under which pyrender's sets of light nodes iterate in ``order`` (intensities):
    small distinct ints sit in a small set's table in ascending order."""
    rank = {intensity: i for i, intensity in enumerate(order)}
    return lambda node: rank[node.light.intensity] if node.light else object.__hash__(node)


def test_light_set_order_cannot_change_a_pixel(renderer, monkeypatch):
    """pyrender binds lights in the order of a set hashed by address and the shader adds them in
    that order: sample 35 of shapes.yaml, seed 11, at 64 px has three directional lights and a
    pixel that two of the six orders moved by one grey level (issue 11)."""
    spec = load_spec(ROOT / "scenes" / "shapes.yaml").model_copy(update={"resolution": 64})
    intensities = [light.intensity for light in build_scene(spec, 11, 35).lights]
    assert len(intensities) == 3
    images = []
    for order in itertools.permutations(intensities):
        monkeypatch.setattr(pyrender.Node, "__hash__", _node_hash_by_light(order))
        plain = pyrender.Scene()
        for intensity in reversed(order):
            plain.add(pyrender.DirectionalLight(intensity=intensity))
        assert [n.light.intensity for n in plain.light_nodes] == list(order)  # the order bites
        images.append(renderer.render(build_scene(spec, 11, 35))["rgb"])
        monkeypatch.undo()
    differ = [i for i, image in enumerate(images) if not np.array_equal(images[0], image)]
    assert not differ, f"light orders {differ} of 0-5 change the image"


def test_meshes_and_lights_reach_pyrender_in_scene_order(renderer, monkeypatch):
    ranks: dict[int, int] = {}
    monkeypatch.setattr(pyrender.Node, "__hash__", lambda n: ranks.setdefault(id(n), -len(ranks)))
    sun = Light("directional", (1, 1, 1), 3.0, look_at([2, -4, 5], [0, 0, 0]), role="sun")
    instance = _scene([_cube(x, 0.0, 0, f"c{x}") for x in (-2.0, -1.0, 0.0, 1.0, 2.0)])
    instance.lights = [sun] + [
        Light(kind, (1, 1, 1), 1.0 + i, look_at([i, -4, 5], [0, 0, 0]))
        for i, kind in enumerate(["directional", "point", "directional", "spot", "point"])
    ]
    plain = pyrender.Scene()
    added = [plain.add(pyrender.PointLight(intensity=float(i))) for i in range(6)]
    assert list(plain.light_nodes) != added  # without the fix, set order is not scene order
    scene, nodes = renderer.build(instance)
    assert list(scene.mesh_nodes) == nodes
    assert [n.light.intensity for n in scene.light_nodes] == [
        light.intensity for light in instance.lights
    ]


def test_amodal_masks_hold_the_occluded_part_and_cost_no_extra_pass(renderer):
    front, back = _cube(0.0, 0.0, 0, "front"), _cube(0.5, 2.0, 1, "back")
    passes = renderer.render(_scene([front, back]), amodal=True)
    full, visible = passes["amodal"][2], passes["inst"] == 2
    assert full.sum() == passes["unoccluded"][2] > visible.sum()  # the hidden part is there
    assert not (visible & ~full).any()  # and holds every visible pixel
    assert np.array_equal(passes["amodal"][1], passes["inst"] == 1)  # not occluded: the same
    plain = renderer.render(_scene([front, back]))
    assert "amodal" not in plain
    for name in ("rgb", "depth", "inst", "seg"):
        np.testing.assert_array_equal(plain[name], passes[name])


def test_amodal_labels_in_the_sample_json_and_their_switch(renderer):
    from pycocotools import mask as mask_utils

    spec = parse_spec({"kind": "street", "resolution": 64})
    occluded = 0
    for index in range(4):
        sample = render_sample(renderer, spec, 0, index)
        for obj in sample.meta["objects"]:
            if obj["amodal_mask"] is None:
                assert obj["box"] is None and obj["amodal_box"] is None
                continue
            full = mask_utils.decode(obj["amodal_mask"]).astype(bool)
            visible = sample.arrays["inst"] == obj["instance_id"]
            assert not (visible & ~full).any()
            rows, cols = np.nonzero(full)
            assert obj["amodal_box"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            if obj["visible_fraction"] > 0:
                assert visible.sum() / full.sum() == pytest.approx(obj["visible_fraction"], 1e-5)
            occluded += obj["visible_fraction"] < 1
    assert occluded > 0
    off = render_sample(renderer, spec.model_copy(update={"amodal": False}), 0, 0)
    assert all("amodal_box" not in obj for obj in off.meta["objects"])
    on = render_sample(renderer, spec, 0, 0)
    np.testing.assert_array_equal(off.arrays["rgb"], on.arrays["rgb"])
