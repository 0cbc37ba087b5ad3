"""KITTI object detection layout: ``<split>/image_2/NNNNNN.png`` and
``<split>/label_2/NNNNNN.txt``, one line per visible thing with the 15 KITTI fields.

Only the 2D fields are known: type (the class name, spaces as ``_``), truncation, occlusion and
the box (``x1 y1 x2 y2``, inclusive pixel coordinates as floats). The 3D fields carry KITTI's
"unknown" values (dimensions -1, location -1000, rotation and alpha -10). Occlusion comes from
the visible fraction (0 fully visible at >= 0.99, 1 partly occluded at >= 0.5, 2 largely
occluded below); truncation is 0 for a box inside the image and the missing fraction
(1 - visible fraction) for a box touching the image border, where the renderer cannot tell the
border from an occluder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm import tqdm

from workbench.data.export.common import (
    condition_sets,
    require_boxes,
    staged_folder,
)

UNKNOWN_3D = "-1 -1 -1 -1000 -1000 -1000 -10"


def occlusion_level(visible_fraction: float) -> int:
    """KITTI's occlusion state from the visible fraction: 0, 1 or 2."""
    if visible_fraction >= 0.99:
        return 0
    return 1 if visible_fraction >= 0.5 else 2


def kitti_lines(objects: list[dict], width: int, height: int) -> list[str]:
    """Returns the label lines of one image's visible things."""
    lines = []
    for obj in objects:
        if obj["box"] is None:
            continue
        x0, y0, x1, y1 = obj["box"]
        at_border = x0 == 0 or y0 == 0 or x1 == width or y1 == height
        truncated = round(1 - obj["visible_fraction"], 2) if at_border else 0.0
        kind = obj["class_name"].replace(" ", "_")
        lines.append(
            f"{kind} {truncated:.2f} {occlusion_level(obj['visible_fraction'])} -10 "
            f"{x0:.2f} {y0:.2f} {x1 - 1:.2f} {y1 - 1:.2f} {UNKNOWN_3D}"
        )
    return lines


def to_kitti(data: str | Path, out: str | Path, force: bool = False, progress: bool = True) -> Path:
    """Writes ``data`` in the KITTI object layout to the folder ``out`` (one split folder per
    condition); returns ``out``.

    Raises:
        WorkbenchError: an unreadable dataset, one without boxes, or ``out`` existing without
            ``force``.
    """
    sets = condition_sets(data, modalities=())
    require_boxes(sets, "kitti")
    with staged_folder(out, force) as stage:
        total = sum(len(d) for d in sets.values())
        with tqdm(total=total, desc="kitti", unit="sample", disable=not progress) as bar:
            for split, dataset in sets.items():
                images, labels = stage / split / "image_2", stage / split / "label_2"
                images.mkdir(parents=True)
                labels.mkdir(parents=True)
                for index in range(len(dataset)):
                    meta = dataset.meta(index)
                    camera = meta["camera"]
                    shutil.copyfile(dataset.file(index, "rgb.png"), images / f"{index:06d}.png")
                    lines = kitti_lines(meta["objects"], camera["width"], camera["height"])
                    (labels / f"{index:06d}.txt").write_text("".join(f"{x}\n" for x in lines))
                    bar.update()
    return Path(out)
