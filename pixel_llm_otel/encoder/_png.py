"""Encode an image tensor as a PNG with zlib and struct only (no Pillow)."""

from __future__ import annotations

import base64
import struct
import zlib

import torch

from ..errors import ErrorCode, ValidationError

__all__ = ["PNG_SIGNATURE", "image_to_png_base64", "image_to_png_bytes"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def image_to_png_bytes(image: torch.Tensor, *, compress_level: int = 6) -> bytes:
    """A PNG file of a CHW (or 1xCHW) image: float in 0..1 (clamped; NaN -> 0) or uint8.

    1, 3 or 4 channels (grey, RGB, RGBA); 8 bits per sample; filter type 0 on every row.
    """
    if not isinstance(image, torch.Tensor):
        raise ValidationError(
            field="image", value=image, expected="a torch.Tensor", code=ErrorCode.VALIDATION_TYPE
        )
    t = image.detach()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in _COLOR_TYPES or t.shape[1] < 1 or t.shape[2] < 1:
        raise ValidationError(
            field="image",
            value=t,
            expected="a CHW tensor with 1, 3 or 4 channels",
            code=ErrorCode.VALIDATION_SHAPE,
        )
    if t.is_floating_point():
        t = (torch.nan_to_num(t.float(), nan=0.0).clamp(0.0, 1.0) * 255.0).round()
        t = t.to(torch.uint8)
    elif t.dtype != torch.uint8:
        raise ValidationError(
            field="image",
            value=t,
            expected="a floating (0..1) or uint8 tensor",
            code=ErrorCode.VALIDATION_DTYPE,
        )
    channels, height, width = (int(d) for d in t.shape)
    rows = t.cpu().permute(1, 2, 0).reshape(height, width * channels)
    rows = torch.cat([torch.zeros(height, 1, dtype=torch.uint8), rows], dim=1)  # filter byte 0
    raw = bytes(rows.flatten().tolist())
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, compress_level)),
            _chunk(b"IEND", b""),
        )
    )


def image_to_png_base64(image: torch.Tensor) -> str:
    """The PNG of ``image``, base64-encoded (for a ``data:image/png;base64,`` URL)."""
    return base64.b64encode(image_to_png_bytes(image)).decode("ascii")


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
