"""``fog``: a dimmer sun and depth fog."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.conditions.effects import FOG_COLOR, depth_fog, set_ambient
from workbench.scene.model import SceneInstance
from workbench.scene.random import uniform


@register_condition("fog")
class Fog(Condition):
    """The sun at half its intensity, ambient light at least 0.35, and Koschmieder fog with a
    visibility of 2 to 8 times the median distance of the labelled things."""

    description = "a dimmer sun and depth fog (visibility 2 to 8 times the subject distance)"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"visibility_scale": uniform(rng, (2.0, 8.0))}

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        if scene.sun:
            scene.sun.intensity *= 0.5
        set_ambient(scene, np.maximum(scene.ambient, 0.35))
        return scene

    def apply_image(
        self,
        rgb: np.ndarray,
        params: dict[str, Any],
        depth: np.ndarray,
        rng: np.random.Generator,
        subject: np.ndarray | None = None,
    ) -> np.ndarray:
        return depth_fog(rgb, params, depth, subject, FOG_COLOR)
