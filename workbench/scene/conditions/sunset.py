"""``sunset``: a very low orange sun."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import move_sun, set_ambient, tint_sky
from workbench.scene.model import SceneInstance
from workbench.scene.random import uniform


@register_condition("sunset")
class Sunset(Condition):
    """The sun 1 to 8 degrees high at 1900 to 2600 K and 60% of its intensity, a dim warm
    ambient and an orange sky."""

    description = "a very low orange sun (1 to 8 degrees, 1900 to 2600 K)"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        elevation, kelvin = uniform(rng, (1.0, 8.0)), uniform(rng, (1900.0, 2600.0))
        return {
            "sky_gain": [0.9, 0.5, 0.27],
            "sun_elevation_deg": elevation,
            "sun_temperature_k": kelvin,
        }

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:
            move_sun(scene.sun, params["sun_elevation_deg"], params["sun_temperature_k"], 0.6)
        set_ambient(scene, np.asarray(scene.ambient) * [0.7, 0.5, 0.45])
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
