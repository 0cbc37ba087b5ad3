"""Randomizers shared by the scene kinds: camera orbit, lights, materials, background, placement."""

from __future__ import annotations

import numpy as np
import trimesh

from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.model import Background, Camera, Light, Material, SceneObject
from workbench.scene.random import (
    hsv_color,
    integer,
    kelvin_to_rgb,
    look_at,
    spherical,
    uniform,
)
from workbench.scene.spec import BackgroundSpec, CameraSpec, LightSpec, MaterialSpec


def orbit_camera(
    rng: np.random.Generator, spec: CameraSpec, resolution: int, target
) -> tuple[Camera, dict]:
    """Places a camera on a sphere around ``target`` (jittered) and returns it with its factors."""
    yfov = uniform(rng, spec.yfov_deg)
    distance = uniform(rng, spec.distance)
    elevation = uniform(rng, spec.elevation_deg)
    azimuth = uniform(rng, spec.azimuth_deg)
    aim = np.asarray(target, float) + rng.uniform(-1, 1, 3) * spec.target_jitter
    eye = aim + spherical(distance, elevation, azimuth)
    camera = Camera(
        yfov=np.radians(yfov),
        pose=look_at(eye, aim),
        width=resolution,
        height=resolution,
        znear=max(0.01, 0.05 * distance),
        zfar=20.0 * distance,
    )
    factors = {
        "yfov_deg": yfov,
        "distance": distance,
        "elevation_deg": elevation,
        "azimuth_deg": azimuth,
        "target": aim.tolist(),
    }
    return camera, factors


def _aim_light(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    return look_at(position, target)


def random_lights(
    rng: np.random.Generator, spec: LightSpec, target, radius: float
) -> tuple[list[Light], tuple, dict]:
    """Draws a sun (directional key light) plus fill lights around ``target``.

    Point and spot light intensities are scaled by their squared distance so that ``intensity``
    means the same irradiance at the target for every kind.

    Returns:
        lights, ambient colour and the factors.
    """
    target = np.asarray(target, float)
    count = integer(rng, spec.count)
    lights, factors = [], []
    for i in range(count):
        kind = "directional" if i == 0 else str(rng.choice(spec.kinds))
        temperature = uniform(rng, spec.color_temperature_k)
        intensity = uniform(rng, spec.intensity)
        elevation = uniform(rng, spec.elevation_deg)
        azimuth = uniform(rng, (0.0, 360.0))
        distance = 2.5 * radius
        position = target + spherical(distance, elevation, azimuth)
        scaled = intensity if kind == "directional" else intensity * distance**2
        lights.append(
            Light(
                kind=kind,
                color=kelvin_to_rgb(temperature),
                intensity=scaled,
                pose=_aim_light(position, target),
                role="sun" if i == 0 else "fill",
            )
        )
        factors.append(
            {
                "kind": kind,
                "temperature_k": temperature,
                "intensity": intensity,
                "elevation_deg": elevation,
                "azimuth_deg": azimuth,
            }
        )
    ambient_level = uniform(rng, spec.ambient)
    return lights, (ambient_level,) * 3, {"lights": factors, "ambient": ambient_level}


def orbit_environment(
    spec, seed: int, index: int, target, radius: float
) -> tuple[Camera, list[Light], tuple, Background, dict]:
    """Draws the camera orbiting ``target``, the lights and the background of sample ``index``,
    each from its own stream; returns them with their factors (``camera``, ``lights``,
    ``ambient``, ``background``)."""
    camera, camera_factors = orbit_camera(
        stream(seed, index, "camera"), spec.camera, spec.resolution, target
    )
    lights, ambient, light_factors = random_lights(
        stream(seed, index, "lights"), spec.lights, target, radius
    )
    background, background_factors = random_background(
        stream(seed, index, "background"), spec.background
    )
    factors = {"camera": camera_factors, **light_factors, "background": background_factors}
    return camera, lights, ambient, background, factors


def random_material(rng: np.random.Generator, spec: MaterialSpec) -> tuple[Material, dict]:
    """Draws a PBR material: HSV colour, metallic, roughness and maybe a photo texture."""
    color = hsv_color(rng, spec.saturation, spec.value)
    metallic = uniform(rng, spec.metallic)
    roughness = uniform(rng, spec.roughness)
    textured = bool(spec.textures) and rng.uniform() < spec.texture_probability
    name = str(rng.choice(spec.textures)) if textured else None
    material = Material(
        base_color=(1.0, 1.0, 1.0) if name else color,
        metallic=metallic,
        roughness=roughness,
        texture=name,
    )
    return material, {
        "color": list(material.base_color),
        "metallic": metallic,
        "roughness": roughness,
        "texture": name,
    }


def random_background(rng: np.random.Generator, spec: BackgroundSpec) -> tuple[Background, dict]:
    """Draws a solid background colour, or with the spec's probability a random photo crop."""
    color = hsv_color(rng, (0.0, 0.6), spec.value)
    use_photo = bool(spec.photos) and rng.uniform() < spec.photo_probability
    name = str(rng.choice(spec.photos)) if use_photo else None
    size = uniform(rng, (0.4, 1.0))
    crop = (float(rng.uniform(0, 1 - size)), float(rng.uniform(0, 1 - size)), size)
    background = Background(color=color, photo=name, crop=crop)
    return background, {"color": list(color), "photo": name, "crop": list(crop) if name else None}


def place_on_plane(
    rng: np.random.Generator, radii: list[float], half_extent: float, tries: int = 200
) -> list[np.ndarray | None]:
    """Places discs of the given footprint radii in a square without overlap (rejection sampling).

    Each disc takes the first of up to ``tries`` uniform draws whose distance to every placed
    centre is at least the sum of the radii. The draws are tested in blocks against all placed
    discs at once, and the generator is left exactly where a one-draw-at-a-time loop leaves it,
    so the placement is that loop's, only without its quadratic Python cost.

    Returns:
        one (x, y) centre per disc, or None for a disc that found no free spot in ``tries`` draws.
    """
    centres = np.empty((len(radii), 2))
    sizes = np.empty(len(radii))
    k = 0
    out: list[np.ndarray | None] = []
    for radius in radii:
        room = max(half_extent - radius, 0.0)
        state = rng.bit_generator.state
        draws = rng.uniform(-room, room, (tries, 2))
        j = _first_free(draws, radius, centres[:k], sizes[:k])
        rng.bit_generator.state = state  # consume only the draws up to the chosen one
        rng.uniform(-room, room, (tries if j is None else j + 1, 2))
        spot = None if j is None else draws[j].copy()
        if spot is not None:
            centres[k], sizes[k] = spot, radius
            k += 1
        out.append(spot)
    return out


def _first_free(
    draws: np.ndarray, radius: float, centres: np.ndarray, sizes: np.ndarray, block: int = 25
) -> int | None:
    """Index of the first draw whose disc keeps clear of the placed discs, or None.

    Squared distances decide where they are clearly above or below the squared reach; those
    within a relative 1e-9 (where rounding could matter) are decided by the exact per-disc test
    ``norm(xy - centre) >= radius + size``.
    """
    reach = (sizes + radius) ** 2
    for start in range(0, len(draws), block):
        candidates = draws[start : start + block]
        dx = candidates[:, None, 0] - centres[None, :, 0]
        dy = candidates[:, None, 1] - centres[None, :, 1]
        squared = dx * dx + dy * dy
        blocked = (squared < reach * (1 - 1e-9)).any(axis=1)
        for i in np.flatnonzero(~blocked):
            xy = candidates[i]
            close = np.flatnonzero(squared[i] <= reach * (1 + 1e-9))
            if all(np.linalg.norm(xy - centres[c]) >= radius + sizes[c] for c in close):
                return start + int(i)
    return None


JAMMING = 0.547  # fraction of a plane that random sequential placement of discs fills at most


def expected_cover(count: int, radii: list[float], size: tuple[float, float]) -> float:
    """Returns the expected total footprint area (m^2) of ``count`` objects whose unit-size
    footprint radius is drawn from ``radii`` and whose size is uniform in ``size``."""
    lo, hi = size
    return count * np.pi * float(np.mean(np.square(radii))) * (lo * lo + lo * hi + hi * hi) / 3


def footprint_radius(mesh: trimesh.Trimesh | list[trimesh.Trimesh], scale: float) -> float:
    """Returns the radius of the vertical cylinder around the origin that holds the scaled mesh."""
    parts = mesh if isinstance(mesh, list) else [mesh]
    return scale * max(float(np.linalg.norm(p.vertices[:, :2], axis=1).max()) for p in parts)


def pose_on_plane(xy, yaw: float, scale: float, z: float = 0.0) -> np.ndarray:
    """Returns the pose of a mesh resting on the plane at height ``z``: scale, yaw, translate."""
    pose = trimesh.transformations.rotation_matrix(yaw, (0, 0, 1))
    pose[:3, :3] *= scale
    pose[:3, 3] = [xy[0], xy[1], z]
    return pose


def ground(
    texture: str | None,
    color,
    half_extent: float,
    tiles: float,
    class_id: int = -1,
    name: str = "ground",
    z: float = 0.0,
) -> SceneObject:
    """Returns a horizontal textured quad centred at the origin (unlabelled stuff by default)."""
    quad = trimesh.creation.box((2 * half_extent, 2 * half_extent, 0.01))
    quad.apply_translation([0, 0, z - 0.005])
    return SceneObject(
        name=name,
        class_id=class_id,
        mesh=assets.with_uv(quad, tiles),
        pose=np.eye(4),
        material=Material(base_color=tuple(color), roughness=0.9, texture=texture),
        thing=False,
        mesh_key=f"ground/{half_extent}/{tiles}/{z}",
        occluder=False,
    )
