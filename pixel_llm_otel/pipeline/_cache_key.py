"""Fallback-cache keys: (model, prompt, image content hash).

The hash covers the image's dtype, shape and bytes, so two equal images share a key whatever
tensor object holds them, and any pixel change gives a new key. Tensors are hashed on the CPU in
their contiguous layout; nothing about the image is kept but the digest.
"""

from __future__ import annotations

import ctypes
import hashlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

__all__ = ["CacheKey", "cache_key", "image_digest", "image_digests"]


class CacheKey(NamedTuple):
    """Hashable key of one cached caption."""

    model: str
    prompt: str
    image: str  # hex digest of the image content


def image_digest(image: torch.Tensor) -> str:
    """A BLAKE2b digest (32 hex chars) of one image tensor's dtype, shape and values."""
    tensor = image.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    tensor = tensor.contiguous()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    # The raw bytes of the (CPU, contiguous) storage; no numpy needed, no copy made.
    size = tensor.numel() * tensor.element_size()
    if size:
        digest.update(ctypes.string_at(tensor.data_ptr(), size))
    return digest.hexdigest()


def image_digests(batch: torch.Tensor, per_image: bool) -> list[str]:
    """One digest per image of a BCHW batch, or one of the whole batch.

    hashlib releases the GIL on large buffers: run this on a worker thread.
    """
    if per_image:
        return [image_digest(batch[i : i + 1]) for i in range(int(batch.shape[0]))]
    return [image_digest(batch)]


def cache_key(model: str, prompt: str, image: torch.Tensor) -> CacheKey:
    """The key under which a caption of ``image`` for ``prompt`` on ``model`` is cached."""
    return CacheKey(model, prompt, image_digest(image))
