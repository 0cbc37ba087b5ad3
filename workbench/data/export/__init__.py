"""Exports of a dataset (or a paired-conditions folder) into the layouts other tools read:
COCO instances, WebDataset shards, a Hugging Face dataset, YOLO, KITTI and Pascal VOC.

``EXPORTS`` maps a format name to its writer ``(data, out, force, progress) -> out``; every
writer streams samples one at a time (memory stays flat), shows progress, refuses an existing
target without ``force`` and leaves nothing half-written. ``workbench export FORMAT DATA --out
OUT`` dispatches through it.
"""

from __future__ import annotations

from workbench.data.export.coco import to_coco
from workbench.data.export.hf import to_hf
from workbench.data.export.kitti import to_kitti
from workbench.data.export.voc import to_voc
from workbench.data.export.webdataset import to_webdataset
from workbench.data.export.yolo import to_yolo
from workbench.registry import Registry

EXPORTS: Registry = Registry("export format")
EXPORTS.add("coco", to_coco, target="file")
EXPORTS.add("webdataset", to_webdataset, target="folder")
EXPORTS.add("hf", to_hf, target="folder")
EXPORTS.add("yolo", to_yolo, target="folder")
EXPORTS.add("kitti", to_kitti, target="folder")
EXPORTS.add("voc", to_voc, target="folder")

__all__ = ["EXPORTS", "to_coco", "to_hf", "to_kitti", "to_voc", "to_webdataset", "to_yolo"]
