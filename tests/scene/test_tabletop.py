"""The ``tabletop`` kind: user mesh files of every format on a table, placed without overlap."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.scene import assets
from workbench.scene.kinds import build_scene, preflight
from workbench.scene.kinds.common import footprint_radius
from workbench.scene.spec import load_spec, parse_spec

FORMATS = {"obj": "striped", "glb": "crate", "ply": "ball", "stl": "cone"}
SCENES = Path(__file__).parents[2] / "scenes"


@pytest.fixture(scope="module")
def meshes(tmp_path_factory) -> dict[str, str]:
    """Writes one small mesh file per format: a box with a red/green striped texture (OBJ + MTL +
    PNG), a face-coloured box (GLB), a sphere (PLY) and a cone (STL)."""
    folder = tmp_path_factory.mktemp("meshes")
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, (np.arange(64) // 16) % 2 == 0] = [255, 0, 0]
    stripes[:, (np.arange(64) // 16) % 2 == 1] = [0, 255, 0]
    striped = assets.with_uv(trimesh.creation.box((0.6, 0.6, 1.0)))
    material = trimesh.visual.material.SimpleMaterial(
        image=Image.fromarray(stripes), diffuse=[255, 255, 255, 255], name="striped"
    )
    striped.visual = trimesh.visual.TextureVisuals(uv=striped.visual.uv, material=material)
    text, files = trimesh.exchange.obj.export_obj(
        striped, include_texture=True, return_texture=True, mtl_name="striped.mtl"
    )
    (folder / "striped.obj").write_text(text)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    crate = trimesh.creation.box((1.0, 0.5, 0.5))
    crate.visual.face_colors = [40, 90, 200, 255]
    crate.export(folder / "crate.glb")
    trimesh.creation.icosphere(subdivisions=2).export(folder / "ball.ply")
    trimesh.creation.cone(radius=0.5, height=1.0).export(folder / "cone.stl")
    (folder / "garbage.obj").write_bytes(np.random.default_rng(0).bytes(4096))
    return {fmt: str(folder / f"{name}.{fmt}") for fmt, name in FORMATS.items()} | {
        "garbage": str(folder / "garbage.obj"),
        "missing": str(folder / "missing.stl"),
    }


def _spec(objects: list[dict], **extra):
    return parse_spec({"kind": "tabletop", "objects": objects, **extra})


def _all(meshes, count=(1, 2), size=(0.15, 0.25), **extra):
    return _spec(
        [
            {"path": meshes[fmt], "class_name": name, "count": count, "size": size}
            for fmt, name in FORMATS.items()
        ],
        **extra,
    )


def _discs(instance) -> list[tuple[np.ndarray, float]]:
    """Footprint discs (centre, radius) of everything standing on the table."""
    return [
        (o.pose[:2, 3], footprint_radius(o.mesh, float(np.linalg.norm(o.pose[:3, 0]))))
        for o in instance.objects
        if not o.mesh_key.startswith("tabletop/")
    ]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_loads_and_builds(meshes, fmt):
    spec = _spec([{"path": meshes[fmt], "class_name": FORMATS[fmt], "count": (1, 2)}])
    preflight(spec)
    instance = build_scene(spec, seed=0, index=0)
    things = [o for o in instance.objects if o.thing]
    assert things and all(o.class_id == 0 for o in things)
    for obj in things:
        lo = np.min([p.bounds[0] for p in obj.mesh], axis=0)
        assert abs(lo[2]) < 1e-6 and abs(obj.pose[2, 3]) < 1e-9  # resting on the table top at z = 0
    keeps_visuals = fmt in ("obj", "glb")
    assert all((o.material is None) == keeps_visuals for o in things)
    assert all((f["material"] == "file") == keeps_visuals for f in instance.factors["objects"])


def test_deterministic(meshes):
    spec = _all(meshes, distractors=(2, 4))
    a, b = build_scene(spec, 3, 7), build_scene(spec, 3, 7)
    assert a.factors == b.factors
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(a.objects, b.objects, strict=True))
    assert np.array_equal(a.camera.pose, b.camera.pose)
    assert build_scene(spec, 3, 8).factors != a.factors


def test_no_interpenetration(meshes):
    spec = _all(meshes, count=(2, 3), distractors=(3, 6), table={"size": 1.2})
    preflight(spec)
    for index in range(20):
        instance = build_scene(spec, 0, index)
        discs = _discs(instance)
        factors = instance.factors
        assert len(discs) == len(factors["objects"]) + len(factors["distractors"])
        for (p, r), (q, s) in combinations(discs, 2):
            assert np.linalg.norm(p - q) >= r + s - 1e-9
        assert all(np.abs(p).max() + r <= 0.6 + 1e-9 for p, r in discs)


def test_unplaced_objects_are_dropped_and_counted(meshes):
    cones = {"path": meshes["stl"], "class_name": "cone", "count": (12, 12), "size": (0.3, 0.3)}
    spec = _spec([cones], table={"size": 0.8})
    instance = build_scene(spec, 0, 0)  # preflight would refuse this spec
    placed = [o for o in instance.objects if o.thing]
    assert instance.factors["unplaced"] > 0
    assert len(placed) + instance.factors["unplaced"] == 12


def test_missing_mesh_file_fails_preflight(meshes):
    spec = _spec(
        [{"path": meshes["obj"], "class_name": "a"}, {"path": meshes["missing"], "class_name": "b"}]
    )
    with pytest.raises(WorkbenchError, match=r"objects\.1\.path: mesh file not found"):
        preflight(spec)


def test_unreadable_mesh_file_fails_preflight(meshes):
    spec = _spec([{"path": meshes["garbage"], "class_name": "junk"}])
    with pytest.raises(WorkbenchError, match=r"objects\.0\.path"):
        preflight(spec)


def test_impossible_placement_fails_preflight(meshes):
    cones = {"path": meshes["stl"], "class_name": "cone", "count": (4, 12), "size": (0.2, 0.3)}
    spec = _spec([{"path": meshes["ply"], "class_name": "ball", "count": (1, 2)}, cones])
    pattern = r"14 objects up to 0\.3 m .* 1\.2 m table .*objects\.1\.count.*table\.size"
    with pytest.raises(WorkbenchError, match=pattern):
        preflight(spec)


def test_example_yaml_builds():
    spec = load_spec(SCENES / "tabletop.yaml")
    preflight(spec)
    instance = build_scene(spec, 0, 0)
    assert instance.factors["objects"]
    assert {o.class_id for o in instance.objects if o.thing} <= set(range(len(spec.classes())))


def test_render_shows_classes_and_texture(meshes):
    from workbench.render import gl

    gl.activate("egl")
    from workbench.render.sample import render_sample
    from workbench.render.view import Renderer

    spec = _all(
        meshes,
        count=(1, 1),
        size=(0.25, 0.3),
        resolution=96,
        distractors=(1, 2),
        background={"photo_probability": 0.0},
    )
    renderer = Renderer(96, 96)
    seen, striped = set(), []
    try:
        for index in range(4):
            sample = render_sample(renderer, spec, 0, index)
            seg, inst = sample.arrays["seg"], sample.arrays["inst"]
            rgb = sample.arrays["rgb"].astype(int)
            assert set(np.unique(seg)) <= {0, 1, 2, 3, 4}
            seen |= set(np.unique(seg).tolist())
            for row in sample.meta["objects"]:
                if row["class_name"] == "striped":
                    striped.append(rgb[inst == row["instance_id"]])
    finally:
        renderer.close()
    assert seen >= {1, 2, 3, 4}
    pixels = np.concatenate(striped)
    red = (pixels[:, 0] > 1.5 * pixels[:, 1:].max(axis=1) + 10).mean()
    green = (pixels[:, 1] > 1.5 * np.maximum(pixels[:, 0], pixels[:, 2]) + 10).mean()
    assert len(pixels) > 100 and red > 0.15 and green > 0.15
