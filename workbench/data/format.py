"""The on-disk sample encoding of the dataset contract (see ARCHITECTURE.md).

Each sample ``K`` (global index, six digits) of a shard is five files::

    K.rgb.png    uint8 H x W x 3
    K.depth.npy  float32 H x W, metres along the camera axis, 0 where no surface
    K.seg.png    uint8 H x W, semantic id = class index + 1, 0 = background
    K.inst.png   uint16 H x W, instance id, 0 = background
    K.json       label, factors, difficulty, camera, objects, condition
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.imageio import PNG, decode_image

FORMAT_NAME = "workbench-dataset"
FORMAT_VERSION = 1
MODALITIES = {
    "rgb": {"file": "rgb.png", "dtype": "uint8", "shape": "H x W x 3"},
    "depth": {
        "file": "depth.npy",
        "dtype": "float32",
        "shape": "H x W",
        "unit": "metre",
        "missing": 0,
    },
    "seg": {
        "file": "seg.png",
        "dtype": "uint8",
        "shape": "H x W",
        "meaning": "class index + 1, 0 = background",
    },
    "inst": {
        "file": "inst.png",
        "dtype": "uint16",
        "shape": "H x W",
        "meaning": "instance id, 0 = background",
    },
    "json": {"file": "json", "meaning": "label, factors, difficulty, camera, objects"},
}


def _check(name: str, array: np.ndarray, dtype, ndim: int) -> None:
    if array.dtype != dtype or array.ndim != ndim:
        raise ValueError(
            f"{name}: expected {np.dtype(dtype)} with {ndim} dims, got {array.dtype} {array.shape}"
        )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_sample(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, bytes]:
    """Encodes one sample into ``{file suffix: bytes}``; checks dtypes, shapes and ranges."""
    rgb, depth, seg, inst = arrays["rgb"], arrays["depth"], arrays["seg"], arrays["inst"]
    _check("rgb", rgb, np.uint8, 3)
    _check("depth", depth, np.float32, 2)
    _check("seg", seg, np.uint8, 2)
    _check("inst", inst, np.uint16, 2)
    if not (np.isfinite(depth).all() and (depth >= 0).all()):
        raise ValueError("depth: values must be finite and non-negative")
    depth_bytes = io.BytesIO()
    np.save(depth_bytes, depth, allow_pickle=False)
    return {
        "rgb.png": _png(Image.fromarray(rgb, "RGB")),
        "depth.npy": depth_bytes.getvalue(),
        "seg.png": _png(Image.fromarray(seg, "L")),
        "inst.png": _png(Image.fromarray(inst)),
        "json": json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(),
    }


# The image mode each contract PNG must decode to (16-bit grey reads as "I" in older Pillow).
IMAGE_MODES = {"rgb.png": ("RGB",), "seg.png": ("L",), "inst.png": ("I;16", "I")}


def decode_file(suffix: str, data: bytes, name: str | None = None):
    """Decodes one file of a sample (by its suffix) to an array or, for ``json``, a dict.

    Args:
        suffix: the file's suffix in the contract (``rgb.png``, ``depth.npy``, ``json``, ...).
        data: the file's content.
        name: what to call the file in an error (its path); defaults to ``suffix``.

    Raises:
        WorkbenchError: one line naming the file: corrupt JSON or ``.npy``, not a PNG, a PNG of
            the wrong mode, too many pixels, or truncated.
    """
    name = name or suffix
    if suffix == "json":
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkbenchError(f"{name}: corrupt sample JSON ({exc})") from None
    if suffix == "depth.npy":
        try:
            depth = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise WorkbenchError(f"{name}: corrupt .npy file ({exc})") from None
        if depth.dtype != np.float32 or depth.ndim != 2:
            raise WorkbenchError(
                f"{name}: {depth.dtype} {depth.shape} where the dataset contract has float32 H x W"
            )
        return depth
    image = decode_image(data, name, PNG)
    if image.mode not in IMAGE_MODES[suffix]:
        raise WorkbenchError(
            f"{name}: a {image.mode} PNG where the dataset contract has {IMAGE_MODES[suffix][0]}"
        )
    array = np.asarray(image)
    return array.astype(np.uint16) if suffix == "inst.png" else array
