"""image_to_png_base64 produces real PNG files (checked with a minimal decoder)."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
import torch

from pixel_llm_otel.encoder import image_to_png_base64, image_to_png_bytes
from pixel_llm_otel.errors import ErrorCode, ValidationError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 6: 4}


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, channels and raw pixels of an 8-bit, non-interlaced, filter-0 PNG."""
    assert data[:8] == SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")
    width, height, depth, color, comp, flt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, comp, flt, interlace) == (8, 0, 0, 0)
    channels = CHANNELS[color]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels + 1
    assert len(raw) == height * stride
    pixels = bytearray()
    for row in range(height):
        line = raw[row * stride : (row + 1) * stride]
        assert line[0] == 0, "only filter type 0 is expected"
        pixels += line[1:]
    return width, height, channels, bytes(pixels)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((3, 5, 7), torch.float32),
        ((1, 3, 4, 4), torch.float64),
        ((1, 6, 2), torch.float32),
        ((4, 3, 3), torch.float32),
        ((3, 2, 9), torch.uint8),
    ],
    ids=["rgb", "batched-one", "grey", "rgba", "uint8"],
)
def test_png_round_trip(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Decoding the PNG gives back exactly the image's 8-bit pixels, row-major HWC."""
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(shape, generator=gen)
    image = (image * 255).to(torch.uint8) if dtype == torch.uint8 else image.to(dtype)
    chw = image[0] if image.ndim == 4 else image
    expected = chw if dtype == torch.uint8 else (chw.float().clamp(0, 1) * 255).round()
    expected_bytes = bytes(expected.to(torch.uint8).permute(1, 2, 0).flatten().tolist())
    width, height, channels, pixels = decode_png(image_to_png_bytes(image))
    assert (channels, height, width) == tuple(chw.shape)
    assert pixels == expected_bytes


def test_base64_is_the_png() -> None:
    """The base64 text decodes to the same PNG bytes; out-of-range and NaN values are clamped."""
    image = torch.tensor([[[-1.0, 0.5], [2.0, float("nan")]]] * 3)
    text = image_to_png_base64(image)
    data = base64.b64decode(text, validate=True)
    assert data == image_to_png_bytes(image)
    _, _, _, pixels = decode_png(data)
    assert pixels[0::3] == bytes([0, 128, 255, 0])


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (torch.rand(2, 4, 4), ErrorCode.VALIDATION_SHAPE),
        (torch.rand(4, 4), ErrorCode.VALIDATION_SHAPE),
        (torch.rand(2, 3, 4, 4), ErrorCode.VALIDATION_SHAPE),
        (torch.ones(3, 4, 4, dtype=torch.int64), ErrorCode.VALIDATION_DTYPE),
        ([[0.5]], ErrorCode.VALIDATION_TYPE),
    ],
    ids=["two-channels", "2d", "batch-of-two", "int64", "list"],
)
def test_png_rejects_non_images(image: object, code: ErrorCode) -> None:
    """What cannot be a PNG raises ValidationError with the matching code."""
    with pytest.raises(ValidationError) as info:
        image_to_png_bytes(image)  # type: ignore[arg-type]
    assert info.value.code is code
