"""Image bytes for tests: any Pillow image encoded, and a PNG whose header lies about its size."""
from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    """``img`` saved in format ``fmt`` (Pillow's name, e.g. ``"PNG"``), as bytes."""
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid 16x16 PNG whose header claims width x height (a decompression bomb's header)."""
    data = bytearray(encode(Image.new("L", (16, 16), 0), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr: ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)
