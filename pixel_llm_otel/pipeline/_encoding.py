"""The pipeline's encoder side: building the encoder, PNG data URLs, encoder-error translation."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import EncoderError, PixelLMError
from ..errors.classifier import DEFAULT_CLASSIFIER
from ._cache_key import digest_inline, image_digest

if TYPE_CHECKING:
    import torch

    from ..encoder import VisionEncoder
    from .config import HybridConfig

__all__ = ["build_encoder", "digest_or_none", "encoder_error", "png_data_urls"]


def build_encoder(config: HybridConfig) -> VisionEncoder:
    """The vision encoder of ``config.encoder``, built once per pipeline (imports torch)."""
    from ..encoder import build_encoder as build

    settings = config.encoder
    return build(settings.kind, settings.config, device=settings.device)


async def png_data_urls(batch: torch.Tensor) -> tuple[str, ...]:
    """Each image as a ``data:image/png;base64,...`` URL (encoded off the event loop)."""
    from ..encoder import image_to_png_base64

    def encode_all() -> tuple[str, ...]:
        return tuple(f"data:image/png;base64,{image_to_png_base64(image)}" for image in batch)

    return await asyncio.to_thread(encode_all)


def encoder_error(exc: Exception) -> PixelLMError:
    """Translate an encoder failure; torch's out-of-memory and device errors keep their codes."""
    if isinstance(exc, PixelLMError):
        return exc
    error = DEFAULT_CLASSIFIER.to_error(exc)
    if isinstance(error, EncoderError):
        return error
    return EncoderError(f"the image encoder failed: {type(exc).__name__}: {exc}", cause=exc)


async def digest_or_none(images: torch.Tensor | None) -> str | None:
    """The content digest for the fallback key, or ``None`` (a failure must not hide the error)."""
    if images is None:
        return None
    try:
        if digest_inline(images):
            return image_digest(images)
        return await asyncio.to_thread(image_digest, images)
    except Exception:
        return None
