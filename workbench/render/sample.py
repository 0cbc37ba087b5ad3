"""Render one sample: scene randomization, condition, passes, labels and metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from workbench.render.labels import difficulty, image_label, objects_table
from workbench.render.view import Renderer
from workbench.rng import stream
from workbench.scene import assets
from workbench.scene.conditions import build_condition
from workbench.scene.kinds import build_scene
from workbench.scene.model import Background


@dataclass
class Sample:
    """Arrays of one sample (``rgb``, ``depth``, ``seg``, ``inst``) and its JSON metadata."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def _composite_photo(rgb: np.ndarray, depth: np.ndarray, background: Background) -> np.ndarray:
    if background.photo is None:
        return rgb
    image = assets.photo(background.photo)
    h, w = image.shape[:2]
    x0, y0, size = background.crop
    side = size * min(h, w)
    box = (
        int(x0 * (w - side)),
        int(y0 * (h - side)),
        int(x0 * (w - side) + side),
        int(y0 * (h - side) + side),
    )
    crop = Image.fromarray(image).crop(box).resize(rgb.shape[1::-1], Image.Resampling.BILINEAR)
    return np.where((depth > 0)[..., None], rgb, np.asarray(crop, np.float32) / 255.0)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def render_sample(
    renderer: Renderer, spec, seed: int, index: int, condition: str = "clone"
) -> Sample:
    """Renders sample ``index`` of the dataset ``(spec, seed)`` under ``condition``.

    The result depends only on the arguments: geometry, materials and camera come from the
    sample's own random streams, the condition (sampled, applied to the scene, then to the
    image, see :class:`~workbench.scene.conditions.Condition`) from its ``condition/<name>``
    stream.

    Raises:
        WorkbenchError: ``condition`` is not registered.
    """
    effect = build_condition(condition)
    instance = build_scene(spec, seed, index)
    condition_rng = stream(seed, index, f"condition/{condition}")
    params = {"name": condition, **effect.sample(condition_rng)}
    instance = effect.apply_scene(instance, params, condition_rng)
    passes = renderer.render(instance, amodal=spec.amodal)
    rgb = passes["rgb"].astype(np.float32) / 255.0
    rgb = _composite_photo(rgb, passes["depth"], instance.background)
    subject = passes["inst"] > 0
    rgb = effect.apply_image(rgb, params, passes["depth"], condition_rng, subject=subject)
    rgb = np.clip(rgb, 0.0, 1.0)
    rgb8 = np.round(rgb * 255.0).astype(np.uint8)

    classes = spec.classes()
    rows = objects_table(instance, passes, classes)
    label, target = image_label(instance, rows)
    score, terms = difficulty(instance, passes, rgb, rows, target, params.get("fog_beta", 0.0))
    cam = instance.camera
    meta = {
        "index": index,
        "seed": seed,
        "condition": params,
        "label": label,
        "label_name": classes[label] if label >= 0 else None,
        "difficulty": score,
        "difficulty_terms": terms,
        "camera": {
            "K": cam.intrinsics(),
            "pose": cam.pose,
            "yfov": cam.yfov,
            "znear": cam.znear,
            "zfar": cam.zfar,
            "width": cam.width,
            "height": cam.height,
        },
        "objects": rows,
        "factors": instance.factors,
    }
    arrays = {"rgb": rgb8, "depth": passes["depth"], "seg": passes["seg"], "inst": passes["inst"]}
    return Sample(arrays=arrays, meta=_jsonable(meta))
