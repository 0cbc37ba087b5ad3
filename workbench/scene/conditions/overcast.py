"""``overcast``: a high dim sun, softer fills, grey sky and haze."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import FOG_COLOR, fills, move_sun, set_ambient, tint_sky
from workbench.scene.model import SceneInstance
from workbench.scene.random import uniform


@register_condition("overcast")
class Overcast(Condition):
    """A 6500 K sun high up (70 degrees) at 30% of its intensity, fills at half, a brighter
    blue-grey ambient, a grey sky and a haze of 20 to 40% towards grey."""

    description = "a high dim sun, softer fills, grey sky and haze"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"sky_gain": [0.85, 0.88, 0.92], "haze": uniform(rng, (0.2, 0.4))}

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:
            move_sun(scene.sun, 70.0, 6500.0, 0.3)
        for light in fills(scene):
            light.intensity *= 0.5
        set_ambient(scene, np.maximum(scene.ambient, 0.45) * [0.92, 0.95, 1.0])
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
        grey = rgb.mean(axis=2, keepdims=True)
        return (1 - params["haze"]) * rgb + params["haze"] * (0.5 * grey + 0.5 * FOG_COLOR)
