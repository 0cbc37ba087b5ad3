"""``rain``: a high dim sun, dark sky, light fog and rain streaks."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import (
    FOG_COLOR,
    depth_fog,
    move_sun,
    rain,
    set_ambient,
    tint_sky,
)
from workbench.scene.model import SceneInstance
from workbench.scene.random import uniform


@register_condition("rain")
class Rain(Condition):
    """A 7500 K sun high up (60 degrees) at 35% of its intensity, a dim blue-grey ambient, a
    dark sky, darker fog with a visibility of 6 to 12 times the subject distance, and 60 to 159
    streaks slanted by up to 20 degrees."""

    description = "a high dim sun, dark sky, light fog and rain streaks"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "sky_gain": [0.5, 0.52, 0.56],
            "visibility_scale": uniform(rng, (6.0, 12.0)),
            "streaks": int(rng.integers(60, 160)),
            "angle_deg": uniform(rng, (-20.0, 20.0)),
        }

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:
            move_sun(scene.sun, 60.0, 7500.0, 0.35)
        set_ambient(scene, np.maximum(np.asarray(scene.ambient) * 0.8, 0.3) * [0.9, 0.95, 1.0])
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
        rgb = depth_fog(rgb, params, depth, subject, FOG_COLOR * 0.8)
        return rain(rgb, rng, params["streaks"], params["angle_deg"])
