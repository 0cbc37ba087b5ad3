"""Pascal VOC layout: ``JPEGImages/ID.jpg``, ``Annotations/ID.xml`` (one ``object`` per visible
thing, 1-based inclusive ``bndbox``), ``SegmentationClass/ID.png`` and
``SegmentationObject/ID.png`` (palette PNGs with VOC's colour map: class index with 0 =
background, as the workbench's semantic maps; instance index), ``ImageSets/Main/SPLIT.txt``
and ``ImageSets/Segmentation/SPLIT.txt``, and ``labels.txt`` (background, then the classes).

``ID`` is the sample index (``000012``), prefixed by the condition for a paired-conditions
folder (``fog_000012``), whose conditions become the splits. Images are JPEG (quality 95), as
VOC loaders expect; the masks are lossless.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from workbench.data.export.common import condition_sets, require_boxes, staged_folder
from workbench.errors import WorkbenchError

FOLDERS = ("JPEGImages", "Annotations", "SegmentationClass", "SegmentationObject")


def voc_palette() -> list[int]:
    """VOC's colour map (the bit-interleaving of the devkit's ``labelcolormap``), 256 x RGB."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def _palette_png(values: np.ndarray, what: str) -> bytes:
    if values.max(initial=0) > 255:
        raise WorkbenchError(
            f"{what}: index {int(values.max())} does not fit VOC's 8-bit palette masks"
        )
    image = Image.fromarray(values.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def annotation(image_id: str, meta: dict, folder: str) -> bytes:
    """The VOC XML of one sample."""
    camera = meta["camera"]
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", camera["width"]), ("height", camera["height"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for obj in meta["objects"]:
        if obj["box"] is None:
            continue
        x0, y0, x1, y1 = obj["box"]
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj["class_name"]
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = "0"
        ET.SubElement(node, "occluded").text = str(int(obj["visible_fraction"] < 0.99))
        ET.SubElement(node, "difficult").text = "0"
        box = ET.SubElement(node, "bndbox")
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def to_voc(data: str | Path, out: str | Path, force: bool = False, progress: bool = True) -> Path:
    """Writes ``data`` in the Pascal VOC layout to the folder ``out``; returns ``out``.

    Raises:
        WorkbenchError: an unreadable dataset, one without boxes, more than 255 instances in an
            image, or ``out`` existing without ``force``.
    """
    sets = condition_sets(data, modalities=("rgb", "seg", "inst"))
    require_boxes(sets, "voc")
    classes = next(iter(sets.values())).classes
    paired = len(sets) > 1
    with staged_folder(out, force) as stage:
        for folder in (*FOLDERS, "ImageSets/Main", "ImageSets/Segmentation"):
            (stage / folder).mkdir(parents=True)
        total = sum(len(d) for d in sets.values())
        with tqdm(total=total, desc="voc", unit="sample", disable=not progress) as bar:
            for split, dataset in sets.items():
                ids = []
                for index in range(len(dataset)):
                    sample = dataset[index]
                    image_id = f"{split}_{index:06d}" if paired else f"{index:06d}"
                    Image.fromarray(sample["rgb"]).save(
                        stage / "JPEGImages" / f"{image_id}.jpg", quality=95
                    )
                    (stage / "Annotations" / f"{image_id}.xml").write_bytes(
                        annotation(image_id, sample["meta"], Path(out).name)
                    )
                    where = f"{dataset.root} sample {index}"
                    (stage / "SegmentationClass" / f"{image_id}.png").write_bytes(
                        _palette_png(sample["seg"], where)
                    )
                    (stage / "SegmentationObject" / f"{image_id}.png").write_bytes(
                        _palette_png(sample["inst"], where)
                    )
                    ids.append(image_id)
                    bar.update()
                listing = "".join(f"{i}\n" for i in ids)
                (stage / "ImageSets" / "Main" / f"{split}.txt").write_text(listing)
                (stage / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(listing)
        (stage / "labels.txt").write_text("".join(f"{c}\n" for c in ["background", *classes]))
    return Path(out)
