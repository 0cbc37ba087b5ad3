"""``street``: a road scene in the spirit of Virtual KITTI, seen from a driver's camera.

World frame: z up, metres. The road runs along +y with its centre line on x = 0 and
right-hand traffic: the right lane (x > 0) drives towards +y, the left lane towards -y. The
camera stands in the right lane at y = 0 and looks down the road. Sidewalks, lamp posts, trees
and buildings line both sides; cars drive in either lane or are parked at the kerb. Cars, posts
and trees that find no free stretch of road are dropped; the preflight refuses more buildings a
side than the camera can see.
"""

from __future__ import annotations

import colorsys
import functools

import numpy as np
import trimesh

from workbench.errors import WorkbenchError
from workbench.rng import stream
from workbench.scene.kinds import register_kind
from workbench.scene.kinds.common import (
    ground,
    pose_on_plane,
    random_background,
    random_lights,
    random_material,
)
from workbench.scene.model import Background, Camera, Material, SceneInstance, SceneObject
from workbench.scene.random import hsv_color, integer, look_at, uniform
from workbench.scene.spec import MaterialSpec, StreetSpec

ROAD_Y = (-20.0, 130.0)  # extent along y of road, markings and sidewalks
CAR_Y = (6.0, 70.0)  # car centres, ahead of the camera
KERBSIDE_Y = (3.0, 80.0)  # lamp posts and trees
KERB = 0.15  # sidewalk height above the road
GROUND_Z = -0.02  # unlabelled ground around the street, just below the road
CAR_GAP = 0.6  # least free distance between cars on one side of the road
ZFAR = 200.0  # the camera's far plane: nothing further away is drawn
ROW_START = (-6.0, 4.0)  # where each side's row of buildings begins along y
BUILDING_SIZE = ((6, 15), (8, 15), (6, 25))  # width (along the road), depth, height in metres
# buildings a side that can stand nearer than the far plane (each at least 6 m wide)
MAX_BUILDINGS = int((ZFAR - ROW_START[0]) // BUILDING_SIZE[0][0]) + 1
CAR_PAINT = MaterialSpec(
    saturation=(0.0, 0.9),
    value=(0.1, 0.95),
    metallic=(0.2, 0.6),
    roughness=(0.2, 0.5),
    texture_probability=0.0,
)
# length, width, body height, cabin length, cabin height, cabin shift towards the rear
CAR_VARIANTS = {
    "compact": (3.8, 1.70, 0.65, 2.0, 0.55, 0.2),
    "sedan": (4.4, 1.80, 0.70, 2.3, 0.55, 0.3),
    "estate": (4.6, 1.80, 0.70, 2.8, 0.60, 0.6),
    "suv": (4.7, 1.95, 0.90, 2.8, 0.70, 0.5),
    "van": (5.0, 2.00, 1.10, 3.4, 0.80, 0.6),
}
# occupied y intervals along each side of the road (+1 right, -1 left)
Taken = dict[int, list[tuple[float, float]]]


def _box(size, centre) -> trimesh.Trimesh:
    box = trimesh.creation.box(size)
    box.apply_translation(centre)
    return box


def _tiled(mesh: trimesh.Trimesh, tile: float) -> trimesh.Trimesh:
    """Returns ``mesh`` with per-face planar UVs that repeat a texture every ``tile`` metres.

    Unlike ``assets.with_uv`` every face is projected along its own dominant axis, so long
    roads and the sides of boxes keep the texture's aspect ratio.
    """
    out = mesh.copy()
    out.unmerge_vertices()  # vertex 3k + j is corner j of face k
    axis = np.abs(np.repeat(out.face_normals, 3, axis=0)).argmax(axis=1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    uv = np.take_along_axis(out.vertices, keep, axis=1) / tile
    out.visual = trimesh.visual.TextureVisuals(uv=uv)
    return out


@functools.lru_cache(maxsize=128)
def car_mesh(variant: str) -> trimesh.Trimesh:
    """Returns a car of one of ``CAR_VARIANTS``: body, cabin and four wheels.

    The car faces +y, is centred on the origin in x and y, and its wheels touch z = 0.
    """
    length, width, body, cabin, cabin_height, shift = CAR_VARIANTS[variant]
    clearance, radius = 0.3, 0.33
    roof = clearance + body
    corners = [(sx, sy) for sx in (-1, 1) for sy in (-1, 1)]
    # the cabin narrows towards the roof: sloped windscreen and rear window
    cabin_points = [(sx * (width / 2 - 0.05), sy * cabin / 2 - shift, roof) for sx, sy in corners]
    cabin_points += [
        (sx * (width / 2 - 0.2), sy * (cabin / 2 - 0.45) - shift - 0.1, roof + cabin_height)
        for sx, sy in corners
    ]
    parts = [
        _box((width, length, body), (0, 0, clearance + body / 2)),
        trimesh.convex.convex_hull(np.array(cabin_points)),
    ]
    for sx, sy in corners:
        wheel = trimesh.creation.cylinder(radius=radius, height=0.25, sections=16)
        wheel.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)))
        wheel.apply_translation((sx * (width / 2 - 0.1), sy * (length / 2 - 0.8), radius))
        parts.append(wheel)
    return trimesh.util.concatenate(parts)


@functools.lru_cache(maxsize=128)
def _pole_mesh(height: float, radius: float) -> trimesh.Trimesh:
    """A lamp post standing on z = 0 whose arm and lamp reach towards -x."""
    post = trimesh.creation.cylinder(radius=radius, height=height, sections=12)
    post.apply_translation((0, 0, height / 2))
    arm = _box((1.3, 0.08, 0.08), (-0.65, 0, height - 0.05))
    lamp = _box((0.55, 0.25, 0.12), (-1.3, 0, height - 0.12))
    return trimesh.util.concatenate([post, arm, lamp])


@functools.lru_cache(maxsize=128)
def _tree_mesh(trunk: float, crown: float) -> trimesh.Trimesh:
    """A tree standing on z = 0: a trunk of height ``trunk`` under a round crown."""
    stem = trimesh.creation.cylinder(radius=0.15, height=trunk + crown, sections=10)
    stem.apply_translation((0, 0, (trunk + crown) / 2))
    top = trimesh.creation.icosphere(subdivisions=2, radius=crown)
    top.apply_scale((1.0, 1.0, 1.2))
    top.apply_translation((0, 0, trunk + 1.2 * crown))
    return trimesh.util.concatenate([stem, top])


def _free_y(
    rng: np.random.Generator,
    taken: list[tuple[float, float]],
    half: float,
    bounds: tuple[float, float],
    tries: int = 50,
) -> float | None:
    """Draws y in ``bounds`` whose interval ``y -/+ half`` misses ``taken``, and claims it."""
    for _ in range(tries):
        y = uniform(rng, bounds)
        if all(y + half <= lo or y - half >= hi for lo, hi in taken):
            taken.append((y - half, y + half))
            return y
    return None


def _street(
    rng: np.random.Generator, road_width: float, sidewalk_width: float, ids: dict[str, int]
) -> tuple[list[SceneObject], dict]:
    """Road, lane markings, sidewalks and the ground around them."""
    lo, hi = ROAD_Y
    length, mid, half = hi - lo, (lo + hi) / 2, road_width / 2
    asphalt, paving = uniform(rng, (0.2, 0.35)), uniform(rng, (0.55, 0.8))
    grass = hsv_color(rng, (0.0, 0.3), (0.5, 0.8))
    dashes = [_box((0.12, 3.0, 0.01), (0, y, 0.015)) for y in np.arange(lo, hi, 9.0)]
    edges = [_box((0.12, length, 0.01), (s * (half - 0.3), mid, 0.015)) for s in (-1, 1)]
    key = f"street/{road_width}/{sidewalk_width}"
    objects = [
        SceneObject(
            name="road",
            class_id=ids["road"],
            pose=np.eye(4),
            mesh=_tiled(_box((road_width, length, 0.1), (0, mid, -0.05)), 1.0),
            material=Material((asphalt,) * 3, roughness=0.95, texture="gravel"),
            thing=False,
            mesh_key=f"{key}/road",
            occluder=False,
        ),
        SceneObject(
            name="lane markings",
            class_id=ids["road"],
            pose=np.eye(4),
            mesh=trimesh.util.concatenate(dashes + edges),
            material=Material((0.9, 0.9, 0.88), roughness=0.6),
            thing=False,
            mesh_key=f"{key}/markings",
            occluder=False,
        ),
    ]
    for side, name in ((1, "right"), (-1, "left")):
        centre = (side * (half + sidewalk_width / 2), mid, (KERB - 0.1) / 2)
        objects.append(
            SceneObject(
                name=f"sidewalk {name}",
                class_id=ids["sidewalk"],
                pose=np.eye(4),
                mesh=_tiled(_box((sidewalk_width, length, KERB + 0.1), centre), 1.5),
                material=Material((paving,) * 3, roughness=0.9, texture="brick"),
                thing=False,
                mesh_key=f"{key}/sidewalk/{name}",
            )
        )
    objects.append(ground("grass", grass, 200.0, tiles=100.0, z=GROUND_Z))
    return objects, {"asphalt": asphalt, "paving": paving, "ground_color": list(grass)}


def _buildings(
    rng: np.random.Generator, count: tuple[int, int], front: float, class_id: int
) -> tuple[list[SceneObject], list[dict]]:
    """Rows of boxes behind the sidewalks, one row a side, placed along y without overlap."""
    objects, factors = [], []
    for side in (1, -1):
        y = uniform(rng, ROW_START)
        for _ in range(integer(rng, count)):
            width, depth, height = (round(uniform(rng, r), 1) for r in BUILDING_SIZE)
            setback = uniform(rng, (0.0, 3.0))
            brick = bool(rng.uniform() < 0.5)
            color = hsv_color(rng, (0.05, 0.35), (0.45, 0.9))
            centre = (side * (front + setback + depth / 2), y + width / 2)
            pose = pose_on_plane(centre, 0.0, 1.0, z=GROUND_Z)
            objects.append(
                SceneObject(
                    name=f"building {len(objects)}",
                    class_id=class_id,
                    pose=pose,
                    mesh=_tiled(_box((depth, width, height), (0, 0, height / 2)), 3.0),
                    material=Material(color, roughness=0.9, texture="brick" if brick else None),
                    thing=False,
                    mesh_key=f"street/building/{depth}/{width}/{height}",
                )
            )
            factors.append(
                {
                    "side": side,
                    "position": list(centre),
                    "width": width,
                    "depth": depth,
                    "height": height,
                    "brick": brick,
                    "color": list(color),
                }
            )
            y += width + uniform(rng, (0.0, 5.0))
    return objects, factors


def _cars(
    rng: np.random.Generator, count: tuple[int, int], road_width: float, class_id: int
) -> tuple[list[SceneObject], list[dict]]:
    """Cars in both lanes or parked at the kerb; cars on one side never share a stretch of road."""
    taken: Taken = {1: [], -1: []}
    objects, factors = [], []
    for i in range(integer(rng, count)):
        variant = str(rng.choice(list(CAR_VARIANTS)))
        length, width = CAR_VARIANTS[variant][:2]
        side = int(rng.choice([1, -1]))  # +1: right lane, drives towards +y
        parked = bool(rng.uniform() < 0.3)
        if parked:
            offset = road_width / 2 - width / 2 - 0.2
        else:
            offset = road_width / 4 + uniform(rng, (-0.3, 0.3))
        yaw_deg = (0.0 if side > 0 else 180.0) + uniform(rng, (-3.0, 3.0))
        material, material_factors = random_material(rng, CAR_PAINT)
        y = _free_y(rng, taken[side], length / 2 + CAR_GAP / 2, CAR_Y)
        if y is None:
            continue
        xy = (side * offset, y)
        objects.append(
            SceneObject(
                name=f"car {i}",
                class_id=class_id,
                mesh=car_mesh(variant),
                pose=pose_on_plane(xy, np.radians(yaw_deg), 1.0),
                material=material,
                front=(0.0, 1.0, 0.0),
                mesh_key=f"street/car/{variant}",
            )
        )
        factors.append(
            {
                "variant": variant,
                "lane": "right" if side > 0 else "left",
                "parked": parked,
                "position": list(xy),
                "yaw_deg": yaw_deg,
                "material": material_factors,
            }
        )
    return objects, factors


def _poles(
    rng: np.random.Generator, count: tuple[int, int], kerb: float, class_id: int, taken: Taken
) -> tuple[list[SceneObject], list[dict]]:
    """Lamp posts at the edge of the sidewalks, their lamps reaching over the road."""
    objects, factors = [], []
    for i in range(integer(rng, count)):
        side = int(rng.choice([1, -1]))
        height = round(uniform(rng, (4.0, 7.0)) * 4) / 4
        radius = round(uniform(rng, (0.08, 0.12)), 2)
        y = _free_y(rng, taken[side], 0.8, KERBSIDE_Y)
        if y is None:
            continue
        xy = (side * (kerb + 0.4), y)
        objects.append(
            SceneObject(
                name=f"pole {i}",
                class_id=class_id,
                mesh=_pole_mesh(height, radius),
                pose=pose_on_plane(xy, 0.0 if side > 0 else np.pi, 1.0, z=KERB),
                material=Material((0.45, 0.47, 0.5), metallic=0.5, roughness=0.5),
                front=(0.0, -float(side), 0.0),
                mesh_key=f"street/pole/{height}/{radius}",
            )
        )
        factors.append({"position": list(xy), "height": height, "radius": radius})
    return objects, factors


def _trees(
    rng: np.random.Generator,
    count: tuple[int, int],
    kerb: float,
    sidewalk_width: float,
    class_id: int,
    taken: Taken,
) -> tuple[list[SceneObject], list[dict]]:
    """Trees on the sidewalks, their crowns clear of each other and of the lamp posts."""
    objects, factors = [], []
    for i in range(integer(rng, count)):
        side = int(rng.choice([1, -1]))
        trunk = round(uniform(rng, (2.0, 3.5)) * 4) / 4
        crown = round(uniform(rng, (1.0, 2.2)) * 5) / 5
        inset = uniform(rng, (0.5, max(0.5, sidewalk_width - 1.0)))
        hsv = (uniform(rng, (0.2, 0.35)), uniform(rng, (0.4, 0.8)), uniform(rng, (0.25, 0.55)))
        color = colorsys.hsv_to_rgb(*hsv)
        y = _free_y(rng, taken[side], crown, KERBSIDE_Y)
        if y is None:
            continue
        xy = (side * (kerb + inset), y)
        objects.append(
            SceneObject(
                name=f"tree {i}",
                class_id=class_id,
                mesh=_tree_mesh(trunk, crown),
                pose=pose_on_plane(xy, 0.0, 1.0, z=KERB),
                material=Material(color, roughness=0.95),
                front=(0.0, -1.0, 0.0),
                mesh_key=f"street/tree/{trunk}/{crown}",
                smooth=True,
            )
        )
        factors.append({"position": list(xy), "trunk": trunk, "crown": crown, "color": list(color)})
    return objects, factors


def _camera(rng: np.random.Generator, spec: StreetSpec, road_width: float) -> tuple[Camera, dict]:
    """A driver's camera in the right lane at y = 0, turned by yaw (left > 0) and pitch (up > 0)."""
    cam = spec.camera
    height, yfov, yaw, pitch, lateral = (
        uniform(rng, r) for r in (cam.height, cam.yfov_deg, cam.yaw_deg, cam.pitch_deg, cam.lateral)
    )
    eye = np.array([road_width / 4 + lateral, 0.0, height])
    a, b = np.radians(yaw), np.radians(pitch)
    forward = np.array([-np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b)])
    camera = Camera(
        yfov=np.radians(yfov),
        pose=look_at(eye, eye + forward),
        width=spec.resolution,
        height=spec.resolution,
        znear=0.1,
        zfar=ZFAR,
    )
    factors = {
        "height": height,
        "yfov_deg": yfov,
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "lateral": lateral,
        "position": eye.tolist(),
    }
    return camera, factors


def _sky(rng: np.random.Generator, spec: StreetSpec) -> tuple[Background, dict]:
    """The spec's background, with a sky blue in place of the random colour."""
    background, factors = random_background(rng, spec.background)
    hsv = (uniform(rng, (0.55, 0.62)), uniform(rng, (0.2, 0.55)), uniform(rng, (0.75, 0.95)))
    background.color = colorsys.hsv_to_rgb(*hsv)
    return background, {**factors, "color": list(background.color)}


def _preflight(spec: StreetSpec) -> None:
    """Refuses more buildings a side than can stand nearer than the camera's far plane.

    Raises:
        WorkbenchError: ``buildings_per_side`` allows more than :data:`MAX_BUILDINGS`.
    """
    if spec.buildings_per_side[1] > MAX_BUILDINGS:
        raise WorkbenchError(
            f"buildings_per_side: at most {MAX_BUILDINGS} buildings a side can be seen (each at "
            f"least {BUILDING_SIZE[0][0]} m wide, the camera sees {ZFAR:g} m); lower "
            f"buildings_per_side (now up to {spec.buildings_per_side[1]})"
        )


@register_kind("street", preflight=_preflight)
def build(spec: StreetSpec, seed: int, index: int) -> SceneInstance:
    """Builds sample ``index``: street, buildings, lamp posts, trees, cars, camera, lights, sky."""
    ids = {name: i for i, name in enumerate(spec.classes())}
    layout = stream(seed, index, "layout")
    road_width = round(uniform(layout, spec.road_width), 2)
    sidewalk_width = round(uniform(layout, spec.sidewalk_width), 2)
    kerb = road_width / 2
    street, street_factors = _street(layout, road_width, sidewalk_width, ids)
    buildings, building_factors = _buildings(
        stream(seed, index, "buildings"),
        spec.buildings_per_side,
        kerb + sidewalk_width,
        ids["building"],
    )
    taken: Taken = {1: [], -1: []}
    poles, pole_factors = _poles(stream(seed, index, "poles"), spec.poles, kerb, ids["pole"], taken)
    trees, tree_factors = _trees(
        stream(seed, index, "trees"), spec.trees, kerb, sidewalk_width, ids["vegetation"], taken
    )
    cars, car_factors = _cars(stream(seed, index, "cars"), spec.cars, road_width, ids["car"])
    camera, camera_factors = _camera(stream(seed, index, "camera"), spec, road_width)
    lights, ambient, light_factors = random_lights(
        stream(seed, index, "lights"), spec.lights, (0.0, 30.0, 0.0), 40.0
    )
    background, background_factors = _sky(stream(seed, index, "background"), spec)
    factors = {
        "road_width": road_width,
        "sidewalk_width": sidewalk_width,
        **street_factors,
        "buildings": building_factors,
        "poles": pole_factors,
        "trees": tree_factors,
        "cars": car_factors,
        "camera": camera_factors,
        **light_factors,
        "background": background_factors,
    }
    return SceneInstance(
        objects=street + buildings + poles + trees + cars,
        lights=lights,
        camera=camera,
        ambient=ambient,
        background=background,
        factors=factors,
    )
