"""``morning``: a low warm sun."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import move_sun, set_ambient, tint_sky
from workbench.scene.model import SceneInstance
from workbench.scene.random import uniform


@register_condition("morning")
class Morning(Condition):
    """The sun 8 to 20 degrees high at 3800 to 5000 K and 85% of its intensity, a slightly
    blue ambient and a warm sky."""

    description = "a low warm sun (8 to 20 degrees, 3800 to 5000 K)"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        elevation, kelvin = uniform(rng, (8.0, 20.0)), uniform(rng, (3800.0, 5000.0))
        return {
            "sky_gain": [1.0, 0.95, 0.85],
            "sun_elevation_deg": elevation,
            "sun_temperature_k": kelvin,
        }

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:
            move_sun(scene.sun, params["sun_elevation_deg"], params["sun_temperature_k"], 0.85)
        set_ambient(scene, np.asarray(scene.ambient) * [0.85, 0.9, 1.0])
        return scene

    def apply_image(
        self,
        rgb: np.ndarray,
        params: dict[str, Any],
        depth: np.ndarray,
        rng: np.random.Generator,
        subject: np.ndarray | None = None,
    ) -> np.ndarray:
        return tint_sky(rgb, depth, params["sky_gain"])
