"""``digits``: one 3D extruded glyph of a digit, in one of pyrender's OpenSans faces."""

from __future__ import annotations

import numpy as np
import trimesh

from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.kinds import register_kind
from workbench.scene.kinds.common import (
    orbit_environment,
    random_material,
)
from workbench.scene.model import SceneInstance, SceneObject
from workbench.scene.random import integer, uniform
from workbench.scene.spec import DigitsSpec

# Glyph frame (x right, y up, z out of the face) to world (z up), facing a camera on +y.
_UPRIGHT = np.array([[-1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def _preflight(spec: DigitsSpec) -> None:
    for font in spec.fonts:
        for digit in spec.digits:
            assets.glyph(font, str(digit), spec.extrusion)


@register_kind("digits", preflight=_preflight)
def build(spec: DigitsSpec, seed: int, index: int) -> SceneInstance:
    """Builds sample ``index``: a glyph with random font, pose, material, lights and background."""
    rng = stream(seed, index, "object")
    digit = int(rng.choice(spec.digits))
    font = str(rng.choice(spec.fonts))
    yaw, pitch, roll = (uniform(rng, r) for r in (spec.yaw_deg, spec.pitch_deg, spec.roll_deg))
    width = uniform(rng, spec.width_scale)
    offset = rng.uniform(-0.12, 0.12, 3) * [1, 0, 1]
    rotation = (
        trimesh.transformations.rotation_matrix(np.radians(yaw), (0, 0, 1))
        @ trimesh.transformations.rotation_matrix(np.radians(pitch), (1, 0, 0))
        @ trimesh.transformations.rotation_matrix(np.radians(roll), (0, 1, 0))
    )
    pose = rotation @ _UPRIGHT @ np.diag([width, 1.0, 1.0, 1.0])
    pose[:3, 3] = offset
    material, material_factors = random_material(stream(seed, index, "material"), spec.materials)
    crossed = digit == 7 and stream(seed, index, "variant").uniform() < spec.crossed_seven
    objects = [
        SceneObject(
            name=f"digit {digit}",
            class_id=digit,
            mesh=assets.crossed_seven(font, spec.extrusion)
            if crossed
            else assets.glyph(font, str(digit), spec.extrusion),
            pose=pose,
            material=material,
            mesh_key=f"glyph/{font}/{digit}/{spec.extrusion}/{'crossed' if crossed else 'plain'}",
        )
    ]

    clutter = stream(seed, index, "distractors")
    distractor_factors = []
    for k in range(integer(clutter, spec.distractors)):
        kind = str(clutter.choice(["cube", "sphere", "cylinder", "cone", "torus"]))
        size = uniform(clutter, (0.15, 0.35))
        side = clutter.choice([-1.0, 1.0])
        position = [
            side * uniform(clutter, (0.55, 0.9)),
            uniform(clutter, (-0.8, 0.3)),
            uniform(clutter, (-0.6, 0.4)),
        ]
        dpose = trimesh.transformations.rotation_matrix(
            uniform(clutter, (0, 2 * np.pi)), clutter.uniform(-1, 1, 3) + 1e-3
        )
        dpose[:3, :3] *= size
        dpose[:3, 3] = position
        dmaterial, dmf = random_material(clutter, spec.materials)
        objects.append(
            SceneObject(
                name=f"distractor {k}",
                class_id=-1,
                mesh=assets.primitive(kind),
                pose=dpose,
                material=dmaterial,
                thing=False,
                mesh_key=f"primitive/{kind}",
            )
        )
        distractor_factors.append(
            {"kind": kind, "size": size, "position": position, "material": dmf}
        )

    camera, lights, ambient, background, environment = orbit_environment(
        spec, seed, index, offset, 1.5
    )
    factors = {
        "digit": digit,
        "font": font,
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "roll_deg": roll,
        "width_scale": width,
        "crossed_seven": crossed,
        "position": offset.tolist(),
        "material": material_factors,
        **environment,
        "distractors": distractor_factors,
    }
    return SceneInstance(
        objects=objects,
        lights=lights,
        camera=camera,
        ambient=ambient,
        background=background,
        factors=factors,
        label=digit,
    )
