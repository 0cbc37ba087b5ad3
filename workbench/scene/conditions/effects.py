"""What several conditions share: moving the sun, setting the ambient light, tinting the sky,
depth fog (Koschmieder's law) and rain streaks."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from workbench.scene.model import Light, SceneInstance
from workbench.scene.random import kelvin_to_rgb, look_at, spherical

FOG_COLOR = np.array([0.78, 0.80, 0.83])


def move_sun(sun: Light, elevation_deg: float, kelvin: float, scale: float) -> None:
    """Moves ``sun`` to ``elevation_deg`` around the point it aims at (same distance and
    azimuth), gives it the colour of ``kelvin`` and scales its intensity by ``scale``."""
    position = sun.pose[:3, 3]
    forward = -sun.pose[:3, 2]
    target = position + forward * np.linalg.norm(position)
    offset = position - target
    azimuth = np.degrees(np.arctan2(offset[1], offset[0]))
    sun.pose = look_at(target + spherical(np.linalg.norm(offset), elevation_deg, azimuth), target)
    sun.color = kelvin_to_rgb(kelvin)
    sun.intensity *= scale


def set_ambient(scene: SceneInstance, ambient: np.ndarray) -> None:
    """Sets the ambient light of ``scene`` to the three values of ``ambient``."""
    scene.ambient = (float(ambient[0]), float(ambient[1]), float(ambient[2]))


def fills(scene: SceneInstance) -> list[Light]:
    """Returns the lights of ``scene`` other than the sun."""
    return [light for light in scene.lights if light.role != "sun"]


def tint_sky(rgb: np.ndarray, depth: np.ndarray, gain) -> np.ndarray:
    """Multiplies the pixels with no surface (the background, colour or photo) by ``gain``."""
    return np.where((depth > 0)[..., None], rgb, rgb * np.asarray(gain))


def fog(rgb: np.ndarray, depth: np.ndarray, beta: float, color=FOG_COLOR) -> np.ndarray:
    """Koschmieder fog: ``I t + A (1 - t)`` with transmission ``t = exp(-beta depth)``.

    Pixels with no surface (depth 0) are at infinity and take the fog colour.
    """
    transmission = np.where(depth > 0, np.exp(-beta * depth), 0.0)[..., None]
    return rgb * transmission + np.asarray(color) * (1.0 - transmission)


def depth_fog(
    rgb: np.ndarray,
    params: dict[str, Any],
    depth: np.ndarray,
    subject: np.ndarray | None,
    color: np.ndarray,
) -> np.ndarray:
    """Fog whose visibility is ``params["visibility_scale"]`` times the median depth of the
    ``subject`` pixels (all surfaces when none is given or visible), so that fog means the same
    at every scene scale; sets ``params["visibility_m"]`` and ``params["fog_beta"]`` (1/m)."""
    surface = depth[(depth > 0) & (subject if subject is not None and subject.any() else True)]
    scale = float(np.median(surface)) if surface.size else 1.0
    visibility = params["visibility_scale"] * scale
    params["visibility_m"] = visibility
    params["fog_beta"] = 3.912 / visibility  # 2% contrast threshold
    return fog(rgb, depth, params["fog_beta"], color)


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
