"""Draws and geometry helpers for randomizers (their seeded streams: :mod:`workbench.rng`)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    """Draws a float uniformly from ``[lo, hi]``."""
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def integer(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    """Draws an integer uniformly from ``[lo, hi]`` inclusive."""
    lo, hi = bounds
    return int(rng.integers(lo, hi + 1))


def look_at(eye: np.ndarray, target: np.ndarray, up: Sequence[float] = (0, 0, 1)) -> np.ndarray:
    """Returns the camera-to-world pose (OpenGL convention) of a camera at ``eye`` facing
    ``target``."""
    eye = np.asarray(eye, float)
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    up = np.asarray(up, float)
    if abs(np.dot(forward, up)) > 0.999:
        up = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -forward, eye
    return pose


def spherical(distance: float, elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """Returns a point at ``distance`` from the origin at the given elevation and azimuth (z up)."""
    el, az = np.radians(elevation_deg), np.radians(azimuth_deg)
    return distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximates the colour of a black body at ``kelvin`` as linear RGB in [0, 1].

    Uses Tanner Helland's fit of the CIE 1964 data, valid from 1000 K to 40000 K.
    """
    t = np.clip(kelvin, 1000.0, 40000.0) / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * np.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def hsv_color(
    rng: np.random.Generator, saturation: Sequence[float], value: Sequence[float]
) -> tuple[float, float, float]:
    """Draws a colour with uniform hue and the given saturation and value ranges."""
    rgb = colorsys.hsv_to_rgb(float(rng.uniform()), uniform(rng, saturation), uniform(rng, value))
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))
