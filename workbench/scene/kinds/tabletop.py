"""``tabletop``: the user's mesh files standing on a table, plus primitive distractors.

``table.size`` is the full side length in metres of the square table top, whose surface lies at
z = 0. Objects and distractors are placed on it without interpenetration (their footprint discs
do not overlap); objects go first, and an object or distractor that finds no free spot is dropped
and counted in the factors. The preflight refuses specs whose objects at their largest counts and
sizes would cover more than half the table, whose distractors would on average cover more than
random placement can fill, or whose objects would show too many triangles. Mesh files that
carry their own appearance (a texture, material or vertex colours) keep it; bare geometry gets a
random material.
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import trimesh

from workbench.errors import WorkbenchError
from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.kinds import register_kind
from workbench.scene.kinds.common import (
    JAMMING,
    expected_cover,
    footprint_radius,
    orbit_environment,
    place_on_plane,
    pose_on_plane,
    random_material,
)
from workbench.scene.model import Material, SceneInstance, SceneObject
from workbench.scene.random import hsv_color, integer, uniform
from workbench.scene.spec import PrimitiveName, TabletopSpec

MAX_COVER = 0.5  # largest fraction of the table top the objects' footprint discs may cover
MAX_SCENE_FACES = 2_000_000  # triangles of the objects in one sample at the largest counts
DISTRACTOR_SIZE = (0.04, 0.12)  # metres, largest extent
THICKNESS, LEG_HEIGHT, LEG_WIDTH = 0.04, 0.72, 0.05  # metres


def _mesh(spec: TabletopSpec, i: int) -> list[trimesh.Trimesh]:
    return assets.load_mesh_file(spec.objects[i].path, field=f"objects.{i}.path")


def _preflight(spec: TabletopSpec) -> None:
    """Loads every mesh file and checks that the largest draw of objects fits on the table and
    within the triangle budget of a sample.

    Raises:
        WorkbenchError: a mesh file is missing, unreadable or over a limit (naming
            ``objects.N.path``), the objects at their largest counts would show more than
            :data:`MAX_SCENE_FACES` triangles, their footprint discs at the largest counts and
            sizes would cover more than half the table, or the distractors' expected footprint
            exceeds :data:`JAMMING` of the table.
    """
    faces = [sum(len(p.faces) for p in _mesh(spec, i)) for i in range(len(spec.objects))]
    drawn = [f * o.count[1] for f, o in zip(faces, spec.objects, strict=True)]
    if sum(drawn) > MAX_SCENE_FACES:
        worst = int(np.argmax(drawn))
        raise WorkbenchError(
            f"objects: up to {sum(drawn):,} triangles in one sample (at most "
            f"{MAX_SCENE_FACES:,}); lower objects.{worst}.count (now up to "
            f"{spec.objects[worst].count[1]} x {faces[worst]:,} triangles) or use a simpler mesh"
        )
    areas = [
        np.pi * footprint_radius(_mesh(spec, i), o.size[1]) ** 2 * o.count[1]
        for i, o in enumerate(spec.objects)
    ]
    room = MAX_COVER * spec.table.size**2
    if sum(areas) > room:
        count = sum(o.count[1] for o in spec.objects)
        largest = max(o.size[1] for o in spec.objects)
        worst = int(np.argmax(areas))
        o = spec.objects[worst]
        need = np.sqrt(sum(areas) / MAX_COVER)
        raise WorkbenchError(
            f"objects: {count} objects up to {largest:g} m cannot be placed on a "
            f"{spec.table.size:g} m table without interpenetration (footprints {sum(areas):.2f} "
            f"m^2, at most {room:.2f} m^2 fit); lower objects.{worst}.count (now up to "
            f"{o.count[1]} x {o.class_name!r}) or objects.{worst}.size (now up to "
            f"{o.size[1]:g} m), or raise table.size to at least {need:.2f}"
        )
    radii = [footprint_radius(assets.primitive(k), 1.0) for k in get_args(PrimitiveName)]
    cover = expected_cover(spec.distractors[1], radii, DISTRACTOR_SIZE)
    if cover > JAMMING * spec.table.size**2:
        need = np.sqrt(cover / JAMMING)
        raise WorkbenchError(
            f"distractors: up to {spec.distractors[1]} distractors cover about {cover:.3g} m^2, "
            f"but random placement fills at most {JAMMING * spec.table.size**2:.3g} m^2 of a "
            f"{spec.table.size:g} m table; lower distractors or raise table.size to at least "
            f"{need:.3g}"
        )


def _box(extents, centre) -> trimesh.Trimesh:
    return trimesh.creation.box(extents, trimesh.transformations.translation_matrix(centre))


def _table(rng: np.random.Generator, spec: TabletopSpec, occluder: bool) -> tuple[list, dict]:
    """Table top (textured, top face at z = 0), four legs and a floor, all unlabelled stuff."""
    texture = str(rng.choice(spec.table.textures)) if spec.table.textures else None
    color = hsv_color(rng, (0.0, 0.4), (0.5, 1.0))
    leg_color = hsv_color(rng, (0.0, 0.5), (0.1, 0.5))
    floor_color = hsv_color(rng, (0.0, 0.3), (0.2, 0.7))
    size, leg_z = spec.table.size, -THICKNESS - LEG_HEIGHT / 2
    corner = size / 2 - LEG_WIDTH
    legs = [
        _box((LEG_WIDTH, LEG_WIDTH, LEG_HEIGHT), (sx * corner, sy * corner, leg_z))
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    parts = {
        "table": (
            assets.with_uv(_box((size, size, THICKNESS), (0, 0, -THICKNESS / 2)), size),
            Material(color, roughness=0.6, texture=texture),
        ),
        "table legs": (trimesh.util.concatenate(legs), Material(leg_color, roughness=0.5)),
        "floor": (
            _box((8 * size, 8 * size, 0.01), (0, 0, -THICKNESS - LEG_HEIGHT - 0.005)),
            Material(floor_color, roughness=0.9),
        ),
    }
    objects = [
        SceneObject(
            name=name,
            class_id=-1,
            mesh=mesh,
            pose=np.eye(4),
            material=material,
            thing=False,
            mesh_key=f"tabletop/{name}/{size}",
            occluder=occluder,
        )
        for name, (mesh, material) in parts.items()
    ]
    factors = {
        "texture": texture,
        "color": list(color),
        "leg_color": list(leg_color),
        "floor_color": list(floor_color),
    }
    return objects, factors


@register_kind("tabletop", preflight=_preflight)
def build(spec: TabletopSpec, seed: int, index: int) -> SceneInstance:
    """Builds sample ``index``: objects and distractors on the table, then camera and lights."""
    rng = stream(seed, index, "objects")
    counts = [integer(rng, o.count) for o in spec.objects]
    if not any(counts):  # the spec allows at least one object; never render an empty table
        counts[int(rng.choice([i for i, o in enumerate(spec.objects) if o.count[1] > 0]))] = 1
    picks = [int(i) for i in rng.permutation(np.repeat(np.arange(len(counts)), counts))]
    sizes = [uniform(rng, spec.objects[i].size) for i in picks]
    meshes = [_mesh(spec, i) for i in picks]

    clutter = stream(seed, index, "distractors")
    primitives = list(get_args(PrimitiveName))
    kinds = [str(clutter.choice(primitives)) for _ in range(integer(clutter, spec.distractors))]
    clutter_sizes = [uniform(clutter, DISTRACTOR_SIZE) for _ in kinds]

    placement = stream(seed, index, "placement")
    radii = [footprint_radius(m, s) for m, s in zip(meshes, sizes, strict=True)]
    radii += [
        footprint_radius(assets.primitive(k), s)
        for k, s in zip(kinds, clutter_sizes, strict=True)
    ]
    spots = place_on_plane(placement, radii, spec.table.size / 2)
    yaws = [uniform(placement, (0.0, 2 * np.pi)) for _ in spots]

    classes = spec.classes()
    materials = stream(seed, index, "materials")
    objects, object_factors, distractor_factors = [], [], []
    for n, (i, mesh, size) in enumerate(zip(picks, meshes, sizes, strict=True)):
        if spots[n] is None:
            continue
        o, xy = spec.objects[i], spots[n]
        material, material_factors = None, "file"
        if not any(p.visual.kind is not None for p in mesh):  # bare geometry: no appearance
            material, material_factors = random_material(materials, spec.materials)
            mesh = [assets.with_uv(p) for p in mesh]
        objects.append(
            SceneObject(
                name=f"{o.class_name} {n}",
                class_id=classes.index(o.class_name),
                mesh=mesh,
                pose=pose_on_plane(xy, yaws[n], size),
                material=material,
                front=(1.0, 0.0, 0.0),
                mesh_key=f"file/{o.path}/{material is None}",
            )
        )
        object_factors.append(
            {
                "file": o.path,
                "class": o.class_name,
                "size": size,
                "yaw": yaws[n],
                "position": [float(xy[0]), float(xy[1])],
                "material": material_factors,
            }
        )
    for n, (kind, size) in enumerate(zip(kinds, clutter_sizes, strict=True), start=len(picks)):
        if spots[n] is None:
            continue
        material, material_factors = random_material(materials, spec.materials)
        objects.append(
            SceneObject(
                name=f"distractor {kind}",
                class_id=-1,
                mesh=assets.primitive(kind),
                pose=pose_on_plane(spots[n], yaws[n], size),
                material=material,
                thing=False,
                mesh_key=f"primitive/{kind}",
                smooth=kind in assets.SMOOTH_PRIMITIVES,
            )
        )
        distractor_factors.append(
            {
                "kind": kind,
                "size": size,
                "yaw": yaws[n],
                "position": [float(spots[n][0]), float(spots[n][1])],
                "material": material_factors,
            }
        )

    centre = np.mean([o.pose[:3, 3] for o in objects[: len(object_factors)]], axis=0)
    centre[2] = 0.5 * np.mean([f["size"] for f in object_factors])
    below = spec.camera.elevation_deg[0] < 0  # the table hides objects only from below
    table, table_factors = _table(stream(seed, index, "table"), spec, occluder=below)
    camera, lights, ambient, background, environment = orbit_environment(
        spec, seed, index, centre, max(1.0, spec.table.size)
    )
    factors = {
        "objects": object_factors,
        "unplaced": len(picks) - len(object_factors),
        "distractors": distractor_factors,
        "unplaced_distractors": len(kinds) - len(distractor_factors),
        "table": table_factors,
        **environment,
    }
    return SceneInstance(
        objects=objects + table,
        lights=lights,
        camera=camera,
        ambient=ambient,
        background=background,
        factors=factors,
    )
