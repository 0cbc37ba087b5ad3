"""YOLO detection layout (Ultralytics): ``images/<split>/NNNNNN.png``, one
``labels/<split>/NNNNNN.txt`` per image (``class cx cy w h``, normalised to [0, 1], one line per
visible thing) and ``data.yaml`` naming the classes and every split (``train`` and ``val``
point at the first; edit them to train on another); a paired-conditions folder gives one split
per condition."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from tqdm import tqdm

from workbench.data.export.common import (
    condition_sets,
    require_boxes,
    staged_folder,
)


def yolo_lines(objects: list[dict], width: int, height: int) -> list[str]:
    """Returns the label lines of one image's objects (things without a visible box skipped).

    Workbench boxes are ``[x0, y0, x1, y1]`` in pixels with exclusive ends, so the centre is
    ``(x0 + x1) / 2`` and the width ``x1 - x0``.
    """
    lines = []
    for obj in objects:
        if obj["box"] is None:
            continue
        x0, y0, x1, y1 = obj["box"]
        lines.append(
            f"{obj['class_id']} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
        )
    return lines


def to_yolo(data: str | Path, out: str | Path, force: bool = False, progress: bool = True) -> Path:
    """Writes ``data`` in the YOLO layout to the folder ``out``; returns ``out``.

    Raises:
        WorkbenchError: an unreadable dataset, one without boxes, or ``out`` existing without
            ``force``.
    """
    sets = condition_sets(data, modalities=())
    require_boxes(sets, "yolo")
    classes = next(iter(sets.values())).classes
    with staged_folder(out, force) as stage:
        total = sum(len(d) for d in sets.values())
        with tqdm(total=total, desc="yolo", unit="sample", disable=not progress) as bar:
            for split, dataset in sets.items():
                (stage / "images" / split).mkdir(parents=True)
                (stage / "labels" / split).mkdir(parents=True)
                for index in range(len(dataset)):
                    meta = dataset.meta(index)
                    camera = meta["camera"]
                    name = f"{index:06d}"
                    shutil.copyfile(
                        dataset.file(index, "rgb.png"),
                        stage / "images" / split / f"{name}.png",
                    )
                    lines = yolo_lines(meta["objects"], camera["width"], camera["height"])
                    (stage / "labels" / split / f"{name}.txt").write_text(
                        "".join(line + "\n" for line in lines)
                    )
                    bar.update()
        first = f"images/{next(iter(sets))}"
        config = {
            "path": str(Path(out).resolve()),
            "train": first,
            "val": first,
            **{split: f"images/{split}" for split in sets},
            "names": dict(enumerate(classes)),
        }
        (stage / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Path(out)
