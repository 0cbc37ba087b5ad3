"""Safe image decoding: formats by content, pixel and byte limits, truncated files named."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.imageio import MAX_PIXELS, PNG, PNG_JPEG, decode_image, read_image


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int, height: int, rows: int = 64) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` RGB pixels whose data stream is the
    first ``rows`` rows of zeros, highly compressible: a decompression bomb in miniature (a few
    kilobytes on disk, ``3 * width * height`` bytes once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    stream = zlib.compress(bytes((3 * width + 1) * rows), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    )


@pytest.fixture
def png() -> bytes:
    return encode(np.random.default_rng(0).integers(0, 256, (48, 40, 3), np.uint8))


def test_a_good_png_and_jpeg_decode_completely(png):
    image = decode_image(png, "good.png", PNG)
    assert image.size == (40, 48) and image.format == "PNG"
    assert np.asarray(image).shape == (48, 40, 3)  # pixels are there: load() ran
    jpeg = encode(np.zeros((8, 8, 3), np.uint8), "JPEG")
    assert decode_image(jpeg, "photo.jpg", PNG_JPEG).format == "JPEG"


@pytest.mark.parametrize("size", [(30000, 30000), (5000, 5000)])
def test_decompression_bomb_is_refused_before_decoding(size):
    data = bomb_png(*size)
    assert len(data) < 10_000  # a few kilobytes declaring 75 MB to 2.7 GB of pixels
    with pytest.raises(WorkbenchError) as info:
        decode_image(data, "uploaded file bomb.png", PNG)
    message = str(info.value)
    assert message.startswith("uploaded file bomb.png: too many pixels")
    assert f"{MAX_PIXELS:,}" in message and "\n" not in message
    if size == (5000, 5000):
        assert "5000 x 5000" in message


def test_a_lower_pixel_limit_is_honoured(png):
    with pytest.raises(WorkbenchError, match=r"x.png: too many pixels \(40 x 48 > 1,000 allowed\)"):
        decode_image(png, "x.png", PNG, max_pixels=1000)


def test_truncated_png_is_named(png):
    with pytest.raises(WorkbenchError, match=r"^cut.png: truncated or corrupt PNG") as info:
        decode_image(png[: len(png) // 2], "cut.png", PNG)
    assert "\n" not in str(info.value)
    with pytest.raises(WorkbenchError, match=r"^cut.png: truncated or corrupt PNG header"):
        decode_image(png[:20], "cut.png", PNG)  # the header itself is cut


def test_corrupt_png_data_is_named(png):
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0xFF
    with pytest.raises(WorkbenchError, match=r"^bad.png: truncated or corrupt PNG"):
        decode_image(bytes(flipped), "bad.png", PNG)


def test_jpeg_where_only_png_is_allowed_is_refused_by_content():
    jpeg = encode(np.zeros((8, 8, 3), np.uint8), "JPEG")
    with pytest.raises(WorkbenchError, match=r"^rgb.png: not a readable PNG image \(judged by"):
        decode_image(jpeg, "rgb.png", PNG)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_other_formats_are_refused_even_where_pillow_reads_them(fmt):
    data = encode(np.zeros((8, 8, 3), np.uint8), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow alone would take it
    with pytest.raises(WorkbenchError, match="not a readable PNG or JPEG image"):
        decode_image(data, "x.png", PNG_JPEG)


def test_text_file_renamed_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not an image\n")
    with pytest.raises(WorkbenchError, match=rf"^{path}: not a readable PNG image"):
        read_image(path, PNG)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(WorkbenchError, match=rf"^{empty}: not a readable PNG"):
        read_image(empty, PNG)


def test_byte_limit_is_checked_before_reading(tmp_path, png):
    with pytest.raises(
        WorkbenchError, match=r"^big.png: [\d,]+ bytes is too large \(at most 100\)"
    ):
        decode_image(png, "big.png", PNG, max_bytes=100)
    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:  # a sparse 2 GiB file: refused by its size, never read
        handle.truncate(2 * 2**30)
    with pytest.raises(WorkbenchError, match=rf"^{huge}: 2,147,483,648 bytes is too large"):
        read_image(huge, PNG)


def test_missing_or_unreadable_path_is_one_line(tmp_path):
    with pytest.raises(WorkbenchError, match=rf"^{tmp_path / 'gone.png'}: unreadable"):
        read_image(tmp_path / "gone.png", PNG)
    with pytest.raises(WorkbenchError, match=rf"^{tmp_path}: unreadable"):
        read_image(tmp_path, PNG)  # a folder


def test_read_image_round_trips(tmp_path, png):
    path = tmp_path / "good.png"
    path.write_bytes(png)
    np.testing.assert_array_equal(
        np.asarray(read_image(path, PNG)), np.asarray(Image.open(io.BytesIO(png)))
    )
