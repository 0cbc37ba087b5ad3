"""Labels derived from the passes: boxes, visible fractions, the image label and difficulty.

Difficulty is a documented scalar in [0, 1], the mean of five terms, each in [0, 1], about the
labelled object (the digit, or the most visible thing):

* ``occlusion``  = 1 - visible fraction (pixels seen / pixels it would cover alone)
* ``off_axis``   = angle between the object's front and the direction to the camera / 90 deg
* ``darkness``   = 1 - min(1, mean luminance of its pixels / 0.5)
* ``fog``        = 1 - fog transmission at its median depth (0 without fog)
* ``smallness``  = 1 - min(1, sqrt(box area / image area) / 0.5)
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from workbench.scene.model import SceneInstance


def box_of(mask: np.ndarray) -> list[int] | None:
    """The ``[x0, y0, x1, y1]`` box (exclusive ends) of a boolean mask; None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def rle(mask: np.ndarray) -> dict:
    """COCO run-length encoding of a boolean mask (``size`` and ASCII ``counts``), as
    pycocotools' ``mask.decode`` reads it."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def objects_table(instance: SceneInstance, passes: dict, classes: list[str]) -> list[dict]:
    """Returns one record per thing: instance id, class, box, pixels and visible fraction, and
    with amodal passes its full extent: ``amodal_box`` and ``amodal_mask`` (RLE), None when no
    part of it lies in the image.

    Boxes are ``[x0, y0, x1, y1]`` in pixels with exclusive ``x1``, ``y1``; ``None`` when the
    thing is not visible.
    """
    inst = passes["inst"]
    count = max(passes["unoccluded"], default=0) + 1
    slices = ndimage.find_objects(inst.astype(np.int32), max_label=count - 1)
    pixels = np.bincount(inst.ravel(), minlength=count)
    things = [o for o in instance.objects if o.thing and o.class_id >= 0]
    rows = []
    for inst_id, obj in enumerate(things, start=1):
        box = slices[inst_id - 1]
        alone = passes["unoccluded"][inst_id]
        rows.append(
            {
                "instance_id": inst_id,
                "name": obj.name,
                "class_id": obj.class_id,
                "class_name": classes[obj.class_id],
                "box": None
                if box is None
                else [box[1].start, box[0].start, box[1].stop, box[0].stop],
                "pixels": int(pixels[inst_id]),
                "visible_fraction": round(float(pixels[inst_id]) / alone, 6) if alone else 0.0,
            }
        )
        if "amodal" in passes:
            full = passes["amodal"].get(inst_id)
            extent = None if full is None else box_of(full)
            rows[-1]["amodal_box"] = extent
            rows[-1]["amodal_mask"] = None if extent is None else rle(full)
    return rows


def image_label(instance: SceneInstance, rows: list[dict]) -> tuple[int, int | None]:
    """Returns the image label and the instance id it refers to.

    The label is the scene's fixed label (digits) or else the class of the most visible thing;
    -1 when no thing is visible.
    """
    if instance.label is not None:
        match = next((r for r in rows if r["class_id"] == instance.label), None)
        return instance.label, match["instance_id"] if match else None
    if not rows or max(r["pixels"] for r in rows) == 0:
        return -1, None
    best = max(rows, key=lambda r: (r["pixels"], -r["instance_id"]))
    return best["class_id"], best["instance_id"]


def difficulty(
    instance: SceneInstance,
    passes: dict,
    rgb: np.ndarray,
    rows: list[dict],
    target: int | None,
    fog_beta: float,
) -> tuple[float, dict[str, float]]:
    """Computes the difficulty and its terms (see the module docstring) for the labelled object."""
    if target is None:
        terms = {"occlusion": 1.0, "off_axis": 1.0, "darkness": 1.0, "fog": 1.0, "smallness": 1.0}
        return 1.0, terms
    row = rows[target - 1]
    mask = passes["inst"] == target
    obj = [o for o in instance.objects if o.thing and o.class_id >= 0][target - 1]
    front = obj.pose[:3, :3] @ np.asarray(obj.front)
    to_camera = instance.camera.pose[:3, 3] - obj.pose[:3, 3]
    cosine = np.dot(front, to_camera) / (np.linalg.norm(front) * np.linalg.norm(to_camera) + 1e-12)
    angle = np.degrees(np.arccos(np.clip(abs(cosine), 0.0, 1.0)))
    luminance = (
        float((rgb[mask] @ np.array([0.2126, 0.7152, 0.0722])).mean()) if mask.any() else 0.0
    )
    depth = float(np.median(passes["depth"][mask])) if mask.any() else 0.0
    height, width = mask.shape
    area = (
        0.0
        if row["box"] is None
        else (row["box"][2] - row["box"][0]) * (row["box"][3] - row["box"][1]) / (height * width)
    )
    terms = {
        "occlusion": 1.0 - row["visible_fraction"],
        "off_axis": min(1.0, angle / 90.0),
        "darkness": 1.0 - min(1.0, luminance / 0.5),
        "fog": 1.0 - float(np.exp(-fog_beta * depth)),
        "smallness": 1.0 - min(1.0, float(np.sqrt(area)) / 0.5),
    }
    terms = {k: round(float(np.clip(v, 0.0, 1.0)), 6) for k, v in terms.items()}
    return round(float(np.mean(list(terms.values()))), 6), terms
