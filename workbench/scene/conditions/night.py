"""``night``: a faint moon, warm dim fills, a lamp beside the camera and sensor noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import fills, move_sun, set_ambient, tint_sky
from workbench.scene.model import Light, SceneInstance
from workbench.scene.random import kelvin_to_rgb, look_at, uniform


@register_condition("night")
class Night(Condition):
    """The sun turned into a 9000 K moon 30 to 60 degrees high at 4% of its intensity, fills
    at 35% and 2700 K, a 3000 K spot lamp beside and above the camera aimed along its view, a
    faint ambient, a dark blue sky and Gaussian sensor noise (sigma 0.02)."""

    description = "a faint moon, warm dim fills, a lamp beside the camera and sensor noise"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"sky_gain": [0.036, 0.042, 0.06], "noise_sigma": 0.02}

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:  # the moon's elevation is drawn only for a scene with a sun
            move_sun(scene.sun, uniform(rng, (30.0, 60.0)), 9000.0, 0.04)
        for light in fills(scene):
            light.intensity *= 0.35
            light.color = kelvin_to_rgb(2700.0)
        eye = scene.camera.pose[:3, 3]
        forward = -scene.camera.pose[:3, 2]
        reach = float(np.linalg.norm(eye)) or 1.0
        lamp = eye + 0.3 * reach * np.array([0.3, 0.3, 0.6])
        scene.lights.append(
            Light(
                kind="spot",
                color=kelvin_to_rgb(3000.0),
                intensity=2.0 * reach**2,
                pose=look_at(lamp, eye + forward * reach),
                role="lamp",
            )
        )
        set_ambient(scene, np.full(3, 0.03))
        return scene

    def apply_image(
        self,
        rgb: np.ndarray,
        params: dict[str, Any],
        depth: np.ndarray,
        rng: np.random.Generator,
        subject: np.ndarray | None = None,
    ) -> np.ndarray:
        rgb = tint_sky(rgb, depth, params["sky_gain"])
        return rgb + rng.normal(0.0, params["noise_sigma"], rgb.shape)
