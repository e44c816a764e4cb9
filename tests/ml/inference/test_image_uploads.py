"""Uploaded images are size-checked from the PNG header BEFORE anything is decoded."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ml.inference.images import (
    MAX_IMAGE_PIXELS,
    ImageTooLargeError,
    images_to_png,
    png_size,
    png_to_images,
)


def png_declaring(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose IHDR (CRC fixed up) declares ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_png_size_reads_the_header_only() -> None:
    assert png_size(png_declaring(20_000, 20_000)) == (20_000, 20_000)
    assert png_size(b"not a png at all, but long enough") is None


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # 400 Mpixel in ~50 KB
    for data in (buffer.getvalue(), png_declaring(20_000, 20_000)):
        with pytest.raises(ImageTooLargeError, match="20000x20000 pixels is too large"):
            png_to_images(data, 8)


def test_the_limit_is_a_pixel_count() -> None:
    side = int(MAX_IMAGE_PIXELS**0.5)
    with pytest.raises(ImageTooLargeError):
        png_to_images(png_declaring(side + 1, side + 1), 8)
    with pytest.raises(ImageTooLargeError):
        png_to_images(png_declaring(64, 64), 8, max_pixels=100)


def test_a_small_png_still_decodes() -> None:
    image = np.linspace(0, 1, 64, dtype=np.float32)[None, :]
    decoded = png_to_images(images_to_png(image, 8), 8)
    np.testing.assert_allclose(decoded, image, atol=1 / 255)
    with pytest.raises(ValueError, match="not a readable image"):
        png_to_images(b"\x89PNG\r\n\x1a\nbroken", 8)
