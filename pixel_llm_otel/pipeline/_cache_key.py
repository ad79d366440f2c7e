"""Fallback-cache keys: (model, prompt, image content hash).

The hash covers the image's dtype, shape and bytes, so two equal images share a key whatever
tensor object holds them, and any pixel change gives a new key. Tensors are hashed on the CPU in
their contiguous layout; nothing about the image is kept but the digest.

Small images are hashed where the caller is (on the event loop): below
:data:`INLINE_DIGEST_MAX_BYTES`, hashing costs less than handing the work to a thread and back
(``benchmarks/bench_cache_key.py`` measures both sides of the threshold). Larger ones go to a
worker thread, where hashlib releases the GIL.
"""

from __future__ import annotations

import ctypes
import hashlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

__all__ = [
    "INLINE_DIGEST_MAX_BYTES",
    "CacheKey",
    "cache_key",
    "digest_inline",
    "image_digest",
    "image_digests",
]

#: Tensors of at most this many bytes are hashed inline (e.g. 3x64x64 float32, 48 KiB).
INLINE_DIGEST_MAX_BYTES = 64 * 1024


class CacheKey(NamedTuple):
    """Hashable key of one cached caption."""

    model: str
    prompt: str
    image: str  # hex digest of the image content


#: ``dtype|shape|`` prefixes of the digests already made, by (dtype, shape) (bounded).
_PREFIXES: dict[tuple[object, object], bytes] = {}
_PREFIXES_KEPT = 256


def image_digest(image: torch.Tensor) -> str:
    """A BLAKE2b digest (32 hex chars) of one image tensor's dtype, shape and values."""
    tensor = image.detach() if image.requires_grad else image
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    tensor = tensor.contiguous()
    key = (tensor.dtype, tensor.shape)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = f"{tensor.dtype}|{tuple(tensor.shape)}|".encode()
        if len(_PREFIXES) >= _PREFIXES_KEPT:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    digest = hashlib.blake2b(prefix, digest_size=16)
    # The (CPU, contiguous) storage's bytes, read in place: no numpy needed, no copy made.
    size = tensor.nbytes
    if size:
        digest.update((ctypes.c_char * size).from_address(tensor.data_ptr()))
    return digest.hexdigest()


def digest_inline(tensor: torch.Tensor) -> bool:
    """Whether hashing ``tensor`` is cheaper inline than on a worker thread (small, on the CPU)."""
    return tensor.device.type == "cpu" and tensor.nbytes <= INLINE_DIGEST_MAX_BYTES


def image_digests(batch: torch.Tensor, per_image: bool) -> list[str]:
    """One digest per image of a BCHW batch, or one of the whole batch.

    hashlib releases the GIL on large buffers: run this on a worker thread unless
    :func:`digest_inline` says the batch is small.
    """
    if per_image:
        return [image_digest(batch[i : i + 1]) for i in range(int(batch.shape[0]))]
    return [image_digest(batch)]


def cache_key(model: str, prompt: str, image: torch.Tensor) -> CacheKey:
    """The key under which a caption of ``image`` for ``prompt`` on ``model`` is cached."""
    return CacheKey(model, prompt, image_digest(image))
