"""Weather and time-of-day conditions, in two pure steps.

``scene_condition`` changes the lights and ambient light of a scene instance (time of day
moves the sun and changes its colour); ``image_condition`` applies what light transport does
in the image: fog from depth (Koschmieder's law), rain streaks, overcast haze, night noise.
Both draw from the sample's own ``condition/<name>`` stream, so paired renders share geometry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from workbench.registry import Registry
from workbench.scene.model import Light, SceneInstance
from workbench.scene.random import kelvin_to_rgb, look_at, spherical, uniform

CONDITIONS: Registry[str] = Registry("condition")
"""What each condition does, in one line; :func:`scene_condition` and :func:`image_condition`
apply it."""
CONDITIONS.add("clone", "the scene as specified")
CONDITIONS.add("overcast", "a high dim sun, softer fills, grey sky and haze")
CONDITIONS.add("fog", "a dimmer sun and depth fog (visibility 2 to 8 times the subject distance)")
CONDITIONS.add("rain", "a high dim sun, dark sky, light fog and rain streaks")
CONDITIONS.add("morning", "a low warm sun (8 to 20 degrees, 3800 to 5000 K)")
CONDITIONS.add("sunset", "a very low orange sun (1 to 8 degrees, 1900 to 2600 K)")
CONDITIONS.add("night", "a faint moon, warm dim fills, a lamp beside the camera and sensor noise")
FOG_COLOR = np.array([0.78, 0.80, 0.83])


def _move_sun(sun: Light, elevation_deg: float, kelvin: float, scale: float) -> None:
    position = sun.pose[:3, 3]
    forward = -sun.pose[:3, 2]
    target = position + forward * np.linalg.norm(position)
    offset = position - target
    azimuth = np.degrees(np.arctan2(offset[1], offset[0]))
    sun.pose = look_at(target + spherical(np.linalg.norm(offset), elevation_deg, azimuth), target)
    sun.color = kelvin_to_rgb(kelvin)
    sun.intensity *= scale


def scene_condition(
    instance: SceneInstance, condition: str, rng: np.random.Generator
) -> dict[str, Any]:
    """Changes the lights of ``instance`` in place for ``condition``.

    Returns:
        the condition's parameters, which ``image_condition`` and the sample JSON use.

    Raises:
        WorkbenchError: ``condition`` is not in :data:`CONDITIONS`.
    """
    CONDITIONS.get(condition)
    params: dict[str, Any] = {"name": condition}
    sun = instance.sun
    fills = [light for light in instance.lights if light.role != "sun"]
    ambient = np.asarray(instance.ambient)
    if condition == "overcast":
        if sun:
            _move_sun(sun, 70.0, 6500.0, 0.3)
        for light in fills:
            light.intensity *= 0.5
        ambient = np.maximum(ambient, 0.45) * [0.92, 0.95, 1.0]
        params["sky_gain"] = [0.85, 0.88, 0.92]
        params["haze"] = uniform(rng, (0.2, 0.4))
    elif condition == "fog":
        if sun:
            sun.intensity *= 0.5
        ambient = np.maximum(ambient, 0.35)
        params["visibility_scale"] = uniform(rng, (2.0, 8.0))
    elif condition == "rain":
        if sun:
            _move_sun(sun, 60.0, 7500.0, 0.35)
        ambient = np.maximum(ambient * 0.8, 0.3) * [0.9, 0.95, 1.0]
        params["sky_gain"] = [0.5, 0.52, 0.56]
        params["visibility_scale"] = uniform(rng, (6.0, 12.0))
        params["streaks"] = int(rng.integers(60, 160))
        params["angle_deg"] = uniform(rng, (-20.0, 20.0))
    elif condition == "morning":
        elevation, kelvin = uniform(rng, (8.0, 20.0)), uniform(rng, (3800.0, 5000.0))
        if sun:
            _move_sun(sun, elevation, kelvin, 0.85)
        ambient = ambient * [0.85, 0.9, 1.0]
        params["sky_gain"] = [1.0, 0.95, 0.85]
        params.update(sun_elevation_deg=elevation, sun_temperature_k=kelvin)
    elif condition == "sunset":
        elevation, kelvin = uniform(rng, (1.0, 8.0)), uniform(rng, (1900.0, 2600.0))
        if sun:
            _move_sun(sun, elevation, kelvin, 0.6)
        ambient = ambient * [0.7, 0.5, 0.45]
        params["sky_gain"] = [0.9, 0.5, 0.27]
        params.update(sun_elevation_deg=elevation, sun_temperature_k=kelvin)
    elif condition == "night":
        if sun:
            _move_sun(sun, uniform(rng, (30.0, 60.0)), 9000.0, 0.04)
        for light in fills:
            light.intensity *= 0.35
            light.color = kelvin_to_rgb(2700.0)
        eye = instance.camera.pose[:3, 3]
        forward = -instance.camera.pose[:3, 2]
        reach = float(np.linalg.norm(eye)) or 1.0
        lamp = eye + 0.3 * reach * np.array([0.3, 0.3, 0.6])
        instance.lights.append(
            Light(
                kind="spot",
                color=kelvin_to_rgb(3000.0),
                intensity=2.0 * reach**2,
                pose=look_at(lamp, eye + forward * reach),
                role="lamp",
            )
        )
        ambient = np.full(3, 0.03)
        params["sky_gain"] = [0.036, 0.042, 0.06]
        params["noise_sigma"] = 0.02
    instance.ambient = (float(ambient[0]), float(ambient[1]), float(ambient[2]))
    return params


def fog(rgb: np.ndarray, depth: np.ndarray, beta: float, color=FOG_COLOR) -> np.ndarray:
    """Koschmieder fog: ``I t + A (1 - t)`` with transmission ``t = exp(-beta depth)``.

    Pixels with no surface (depth 0) are at infinity and take the fog colour.
    """
    transmission = np.where(depth > 0, np.exp(-beta * depth), 0.0)[..., None]
    return rgb * transmission + np.asarray(color) * (1.0 - transmission)


def rain(rgb: np.ndarray, rng: np.random.Generator, streaks: int, angle_deg: float) -> np.ndarray:
    """Adds bright, slightly blurred rain streaks and darkens the scene."""
    h, w = rgb.shape[:2]
    layer = np.zeros((h, w), np.float32)
    length = max(3, int(0.08 * h))
    direction = np.array([np.sin(np.radians(angle_deg)), np.cos(np.radians(angle_deg))])
    starts = rng.uniform([0, -length], [w, h], (streaks, 2))
    steps = np.arange(length)[:, None]
    for start in starts:
        xy = np.round(start + steps * direction).astype(int)
        keep = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        layer[xy[keep, 1], xy[keep, 0]] = 1.0
    blurred = np.asarray(
        Image.fromarray((layer * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    )
    alpha = (blurred.astype(np.float32) / 255.0 * 0.5)[..., None]
    return (rgb * 0.82) * (1 - alpha) + 0.85 * alpha


def image_condition(
    rgb: np.ndarray,
    depth: np.ndarray,
    params: dict[str, Any],
    rng: np.random.Generator,
    subject: np.ndarray | None = None,
) -> np.ndarray:
    """Applies the image-space part of a condition to ``rgb`` (float in [0, 1], H x W x 3).

    Fog and rain set ``params["fog_beta"]`` (1/m), derived from a visibility distance that is a
    multiple of the median depth of the ``subject`` pixels (the labelled things; all surfaces
    when none is given or visible), so fog means the same at every scene scale.
    """
    name = params["name"]
    if "sky_gain" in params:  # the background (colour or photo) takes the light of the condition
        rgb = np.where((depth > 0)[..., None], rgb, rgb * np.asarray(params["sky_gain"]))
    surface = depth[(depth > 0) & (subject if subject is not None and subject.any() else True)]
    scale = float(np.median(surface)) if surface.size else 1.0
    if name in ("fog", "rain"):
        visibility = params["visibility_scale"] * scale
        params["visibility_m"] = visibility
        params["fog_beta"] = 3.912 / visibility  # 2% contrast threshold
        rgb = fog(rgb, depth, params["fog_beta"], FOG_COLOR * (0.8 if name == "rain" else 1.0))
    if name == "rain":
        rgb = rain(rgb, rng, params["streaks"], params["angle_deg"])
    if name == "overcast":
        grey = rgb.mean(axis=2, keepdims=True)
        rgb = (1 - params["haze"]) * rgb + params["haze"] * (0.5 * grey + 0.5 * FOG_COLOR)
    if name == "night":
        rgb = rgb + rng.normal(0.0, params["noise_sigma"], rgb.shape)
    return np.clip(rgb, 0.0, 1.0)
