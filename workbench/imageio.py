"""Safe image decoding for every image the workbench reads (datasets, ImageFolder trees, photo
textures, uploads): formats restricted by content, a pixel limit checked before any pixel is
decoded, a byte limit checked before the file is read, and the whole image decoded inside the
check, so a truncated or corrupt file fails here with one line that names it.

No torch here: ``scene`` uses it too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from workbench.errors import WorkbenchError

# The dataset contract's largest image is 2048 x 2048 (the scene spec's resolution bound); this
# limit allows twice that a side (16.8 M pixels, 64 MiB as RGBA) and is far below Pillow's own
# warning threshold (89 M pixels), so no image Pillow would warn about gets past it.
MAX_PIXELS = 4096 * 4096
MAX_BYTES = 64 * 2**20
UPLOAD_MAX_MB = 4
"""Largest file the app accepts as an upload, in Streamlit's megabytes (MiB): the uploader
widgets' ``max_upload_size`` and the server's ``server.maxUploadSize``."""
UPLOAD_MAX_BYTES = UPLOAD_MAX_MB * 2**20
UPLOAD_MAX_PIXELS = 2048 * 2048
"""Largest uploaded image: the dataset contract's largest (48 MiB as float32 RGB)."""
PNG = ("PNG",)
"""The dataset contract's images (``rgb.png``, ``seg.png``, ``inst.png``)."""
PNG_JPEG = ("PNG", "JPEG")
"""Uploads, ImageFolder trees and photo textures."""


def _formats_text(formats: Sequence[str]) -> str:
    return " or ".join(formats)


def decode_image(
    data: bytes,
    name: str,
    formats: Sequence[str],
    max_pixels: int = MAX_PIXELS,
    max_bytes: int | None = MAX_BYTES,
) -> Image.Image:
    """Decodes an image file's bytes completely, refusing anything but a small image of the
    named formats.

    Args:
        data: the file's content.
        name: what to call the file in an error (a path, or ``uploaded file NAME``).
        formats: Pillow format names the content must be (``PNG``, ``JPEG``); the file's name
            and extension play no part.
        max_pixels: largest width x height allowed; checked from the header, before decoding.
        max_bytes: largest file size allowed; None for no limit.

    Returns:
        the decoded image (any mode; convert as needed).

    Raises:
        WorkbenchError: one line naming the file: too large, not of the formats, too many
            pixels, or truncated / corrupt.
    """
    allowed = tuple(f.upper() for f in formats)
    kind = _formats_text(allowed)
    if max_bytes is not None and len(data) > max_bytes:
        raise WorkbenchError(f"{name}: {len(data):,} bytes is too large (at most {max_bytes:,})")
    try:
        image = Image.open(io.BytesIO(data), formats=list(allowed))
    except UnidentifiedImageError:
        raise WorkbenchError(
            f"{name}: not a readable {kind} image (judged by its content, not its name)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise WorkbenchError(
            f"{name}: too many pixels (more than Pillow's decompression-bomb limit; "
            f"at most {max_pixels:,} allowed)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WorkbenchError(f"{name}: truncated or corrupt {kind} header ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise WorkbenchError(
            f"{name}: too many pixels ({width} x {height} > {max_pixels:,} allowed)"
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WorkbenchError(f"{name}: truncated or corrupt {image.format} ({exc})") from None
    return image


def read_image(
    path: str | Path,
    formats: Sequence[str],
    max_pixels: int = MAX_PIXELS,
    max_bytes: int | None = MAX_BYTES,
) -> Image.Image:
    """Reads and decodes an image file; see :func:`decode_image` (errors name ``path``).

    Raises:
        WorkbenchError: unreadable, too large, not of the formats, too many pixels, or truncated.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise WorkbenchError(f"{path}: {size:,} bytes is too large (at most {max_bytes:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"{path}: unreadable ({exc.strerror or exc})") from None
    return decode_image(data, str(path), formats, max_pixels, max_bytes)
