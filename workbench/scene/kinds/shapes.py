"""``shapes``: several primitives on a textured ground, occluding each other.

Objects are placed on the ground without interpenetration; one that finds no free spot is
dropped and counted in the factors. A spec whose objects at the largest count would, on
average, cover more of the ground than random placement can fill is refused by the preflight.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError
from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.kinds import register_kind
from workbench.scene.kinds.common import (
    JAMMING,
    expected_cover,
    footprint_radius,
    ground,
    orbit_environment,
    place_on_plane,
    pose_on_plane,
    random_material,
)
from workbench.scene.model import SceneInstance, SceneObject
from workbench.scene.random import hsv_color, integer, uniform
from workbench.scene.spec import ShapesSpec


def _preflight(spec: ShapesSpec) -> None:
    """Checks that the objects at the largest count fit on the ground in expectation.

    Raises:
        WorkbenchError: their expected footprint exceeds :data:`JAMMING` of the ground square
            (side ``2 * area``), naming ``count``, ``size`` and ``area``.
    """
    radii = [footprint_radius(assets.primitive(k), 1.0) for k in spec.primitives]
    cover = expected_cover(spec.count[1], radii, spec.size)
    room = JAMMING * (2 * spec.area) ** 2
    if cover > room:
        need = np.sqrt(cover / JAMMING) / 2
        raise WorkbenchError(
            f"count: up to {spec.count[1]} objects of {spec.size[0]:g}-{spec.size[1]:g} m cover "
            f"about {cover:.3g} m^2 of ground, but random placement fills at most {room:.3g} m^2 "
            f"of the {2 * spec.area:g} m square; lower count (now up to {spec.count[1]}) or size, "
            f"or raise area to at least {need:.3g}"
        )


@register_kind("shapes", preflight=_preflight)
def build(spec: ShapesSpec, seed: int, index: int) -> SceneInstance:
    """Builds sample ``index``: objects placed without interpenetration, then camera and lights."""
    rng = stream(seed, index, "objects")
    count = max(1, integer(rng, spec.count))
    kinds = [str(rng.choice(spec.primitives)) for _ in range(count)]
    sizes = [uniform(rng, spec.size) for _ in kinds]
    yaws = [uniform(rng, (0.0, 2 * np.pi)) for _ in kinds]
    radii = [footprint_radius(assets.primitive(k), s) for k, s in zip(kinds, sizes, strict=True)]
    spots = place_on_plane(rng, radii, spec.area)
    materials = stream(seed, index, "materials")
    objects, object_factors = [], []
    for i, (kind, size, yaw, xy) in enumerate(zip(kinds, sizes, yaws, spots, strict=True)):
        if xy is None:
            continue
        material, material_factors = random_material(materials, spec.materials)
        objects.append(
            SceneObject(
                name=f"{kind} {i}",
                class_id=spec.primitives.index(kind),
                mesh=assets.primitive(kind),
                pose=pose_on_plane(xy, yaw, size),
                material=material,
                front=(1.0, 0.0, 0.0),
                mesh_key=f"primitive/{kind}",
                smooth=kind in assets.SMOOTH_PRIMITIVES,
            )
        )
        object_factors.append(
            {
                "kind": kind,
                "size": size,
                "yaw": yaw,
                "position": [float(xy[0]), float(xy[1])],
                "material": material_factors,
            }
        )

    floor = stream(seed, index, "ground")
    texture = str(floor.choice(spec.ground_textures)) if spec.ground_textures else None
    floor_color = hsv_color(floor, (0.0, 0.3), (0.5, 1.0))
    objects.append(ground(texture, floor_color, 4.0 * spec.area + 4.0, tiles=6.0))

    centre = np.mean([o.pose[:3, 3] for o in objects[:-1]], axis=0) + [0, 0, 0.3]
    camera, lights, ambient, background, environment = orbit_environment(
        spec, seed, index, centre, 2.0
    )
    factors = {
        "objects": object_factors,
        "unplaced": count - len(object_factors),
        "ground": {"texture": texture, "color": list(floor_color)},
        **environment,
    }
    return SceneInstance(
        objects=objects,
        lights=lights,
        camera=camera,
        ambient=ambient,
        background=background,
        factors=factors,
    )
