"""``15-deg-left``, ``15-deg-right``, ``30-deg-left``, ``30-deg-right``: the camera turned about
the vertical axis through its own centre, as in Virtual KITTI's camera-rotation variants."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.scene.conditions.base import Condition, register_condition
from workbench.scene.model import SceneInstance


class CameraTurn(Condition):
    """Turns the camera by :attr:`degrees` about the world's up axis (z) through the camera's
    centre, left for positive angles; lights, geometry and every draw stay as they are."""

    degrees: float = 0.0

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"yaw_deg": self.degrees}

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        angle = np.deg2rad(params["yaw_deg"])
        c, s = np.cos(angle), np.sin(angle)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        pose = scene.camera.pose.copy()
        pose[:3, :3] = turn @ pose[:3, :3]
        scene.camera.pose = pose
        return scene


def _register(degrees: int, side: str) -> type[CameraTurn]:
    signed = degrees if side == "left" else -degrees
    cls = type(
        f"CameraTurn{side.title()}{degrees}",
        (CameraTurn,),
        {
            "degrees": float(signed),
            "description": f"the camera turned {degrees} degrees to the {side}",
            "__doc__": f"The camera turned {degrees} degrees to the {side} (Virtual KITTI).",
        },
    )
    return register_condition(f"{degrees}-deg-{side}")(cls)


TURNS = [_register(degrees, side) for degrees in (15, 30) for side in ("left", "right")]
