"""Plain-data description of one randomized scene, independent of any renderer.

World frame: z up, metres. Camera poses are camera-to-world in the OpenGL convention
(the camera looks along its -z axis, +y is up in the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh


@dataclass
class Material:
    """PBR material parameters. ``texture`` names a photo texture (see ``assets.texture``)."""

    base_color: tuple[float, float, float]
    metallic: float = 0.0
    roughness: float = 0.7
    texture: str | None = None


@dataclass
class SceneObject:
    """One mesh placed in the world.

    Attributes:
        name: human-readable name, written into the sample JSON.
        class_id: semantic class index (0-based into the spec's classes), or -1 for unlabelled
            clutter that renders as background in the label maps.
        mesh: geometry in its local frame (a list for multi-part meshes, e.g. loaded files).
        pose: 4x4 local-to-world transform.
        material: material, or None to keep the mesh's own visuals (textured mesh files).
        thing: True for countable objects (instance id, box, visible fraction); False for
            "stuff" such as road or buildings, which appear only in the semantic map.
        front: unit vector in the local frame that faces the viewer in the canonical pose,
            used for the off-axis term of the difficulty.
        mesh_key: cache key for the geometry (same key, same geometry).
        smooth: smooth (vertex-normal) shading for curved surfaces; flat shading otherwise.
        occluder: False for surfaces that cannot hide objects (the ground under them), which
            lets the renderer skip visibility passes.
    """

    name: str
    class_id: int
    mesh: trimesh.Trimesh | list[trimesh.Trimesh]
    pose: np.ndarray
    material: Material | None
    thing: bool = True
    front: tuple[float, float, float] = (0.0, 0.0, 1.0)
    mesh_key: str = ""
    smooth: bool = False
    occluder: bool = True


@dataclass
class Light:
    """A light; ``pose`` is light-to-world (directional and spot lights shine along -z)."""

    kind: str  # directional | point | spot
    color: tuple[float, float, float]
    intensity: float
    pose: np.ndarray
    role: str = "fill"  # "sun" for the key light that conditions move


@dataclass
class Camera:
    """Pinhole camera."""

    yfov: float
    pose: np.ndarray
    width: int
    height: int
    znear: float = 0.05
    zfar: float = 100.0

    def intrinsics(self) -> np.ndarray:
        """Returns the 3x3 intrinsic matrix K in pixels (origin at the top-left pixel corner)."""
        fy = 0.5 * self.height / np.tan(0.5 * self.yfov)
        return np.array(
            [[fy, 0.0, 0.5 * self.width], [0.0, fy, 0.5 * self.height], [0.0, 0.0, 1.0]]
        )


@dataclass
class Background:
    """Solid colour, optionally overlaid by a crop of a photo where no surface is hit."""

    color: tuple[float, float, float]
    photo: str | None = None
    crop: tuple[float, float, float] = (0.0, 0.0, 1.0)  # x0, y0 as fractions, size fraction


@dataclass
class SceneInstance:
    """Everything a renderer needs for one sample, plus the factors that produced it."""

    objects: list[SceneObject]
    lights: list[Light]
    camera: Camera
    ambient: tuple[float, float, float]
    background: Background
    factors: dict[str, Any] = field(default_factory=dict)
    label: int | None = None  # fixed image label (digits); None = most visible thing

    @property
    def sun(self) -> Light | None:
        """The key light that time-of-day conditions move, if the scene has one."""
        return next((light for light in self.lights if light.role == "sun"), None)
