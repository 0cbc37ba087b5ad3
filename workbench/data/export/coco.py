"""COCO instances with RLE masks (pycocotools), one annotation per visible thing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from workbench.data.reader import open_dataset
from workbench.data.writer import check_folder_path, shard_dir, write_json_atomic
from workbench.errors import WorkbenchError


def _check_file_out(out: Path, force: bool) -> None:
    check_folder_path(out.parent)
    if out.is_dir():
        raise WorkbenchError(f"--out {out}: is a folder; name the JSON file to write")
    if out.exists() and not force:
        raise WorkbenchError(f"--out {out}: already exists; add --force to overwrite it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"--out {out}: cannot create its folder ({exc.strerror})") from None


def _amodal(obj: dict) -> dict:
    """The amodal fields of an annotation (extra keys pycocotools ignores): the full extent's
    ``amodal_bbox`` (``[x, y, w, h]``) and ``amodal_segmentation`` (RLE), when recorded."""
    if obj.get("amodal_box") is None:
        return {}
    x0, y0, x1, y1 = obj["amodal_box"]
    return {
        "amodal_bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "amodal_segmentation": obj["amodal_mask"],
    }


def to_coco(data: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Writes COCO instances (one annotation per visible thing, RLE masks; with the amodal box
    and mask as ``amodal_bbox`` and ``amodal_segmentation`` when the dataset records them) for a
    dataset.

    Category ids are class index + 1, as in the semantic maps. Image file names are relative
    to the dataset folder.

    Args:
        data: a finished dataset folder.
        out: the JSON file to write (default ``DATA/coco.json``).
        force: overwrite an existing file.

    Returns:
        the path of the JSON file.

    Raises:
        WorkbenchError: an unreadable dataset, or ``out`` a folder or an existing file without
            ``force``.
    """
    dataset = open_dataset(data, modalities=("inst",))
    out = Path(out) if out else dataset.root / "coco.json"
    _check_file_out(out, force)
    images, annotations = [], []
    for index in tqdm(range(len(dataset)), desc="coco", unit="sample"):
        sample = dataset[index]
        meta, inst = sample["meta"], sample["inst"]
        height, width = inst.shape
        rgb = shard_dir(dataset.root, index // dataset.shard_size) / f"{index:06d}.rgb.png"
        images.append(
            {
                "id": index,
                "file_name": str(rgb.relative_to(dataset.root)),
                "width": width,
                "height": height,
                "condition": meta["condition"]["name"],
                "label": meta["label"],
            }
        )
        for obj in meta["objects"]:
            if obj["pixels"] == 0:
                continue
            rle = mask_utils.encode(np.asfortranarray(inst == obj["instance_id"]).astype(np.uint8))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index,
                    "category_id": obj["class_id"] + 1,
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [x, y, w, h],
                    "iscrowd": 0,
                    "visible_fraction": obj["visible_fraction"],
                    **_amodal(obj),
                }
            )
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(dataset.classes)]
    write_json_atomic(
        out,
        {
            "images": images,
            "annotations": annotations,
            "categories": categories,
            "info": {
                "description": f"workbench dataset {dataset.manifest['name']}",
                "seed": dataset.manifest["seed"],
            },
        },
    )
    return out
