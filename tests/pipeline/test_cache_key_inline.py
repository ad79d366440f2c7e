"""The fallback-cache key: small images hashed inline, large ones on a thread, the same key."""

from __future__ import annotations

import pytest
import torch

from pixel_llm_otel.pipeline._cache_key import (
    INLINE_DIGEST_MAX_BYTES,
    digest_inline,
    image_digests,
)
from pixel_llm_otel.sim import SimulatorServer

SIDE_AT_LIMIT = 64  # 3 x 64 x 64 float32 = 48 KiB, under the limit
SIDE_OVER_LIMIT = 96  # 3 x 96 x 96 float32 = 108 KiB, over it


@pytest.mark.parametrize(
    ("shape", "dtype", "inline"),
    [
        ((1, 3, 16, 16), torch.float32, True),
        ((1, 3, SIDE_AT_LIMIT, SIDE_AT_LIMIT), torch.float32, True),
        ((1, 3, SIDE_OVER_LIMIT, SIDE_OVER_LIMIT), torch.float32, False),
        ((1, 3, SIDE_OVER_LIMIT, SIDE_OVER_LIMIT), torch.uint8, True),
        ((1, INLINE_DIGEST_MAX_BYTES // 4), torch.float32, True),
        ((1, INLINE_DIGEST_MAX_BYTES // 4 + 1), torch.float32, False),
    ],
    ids=["16px-f32", "64px-f32", "96px-f32", "96px-u8", "limit", "limit+1"],
)
def test_digest_inline_follows_the_byte_limit(shape, dtype, inline):
    """Tensors up to INLINE_DIGEST_MAX_BYTES (by bytes, not pixels) are hashed inline."""
    assert digest_inline(torch.zeros(shape, dtype=dtype)) is inline


@pytest.mark.parametrize("side", [16, SIDE_OVER_LIMIT], ids=["inline", "thread"])
async def test_cached_caption_is_served_whichever_way_the_key_was_hashed(
    sim: SimulatorServer, make_llm, side
):
    """A caption remembered for an image is served from the cache when the server fails."""
    image = torch.rand(3, side, side, generator=torch.Generator().manual_seed(3))
    llm = make_llm(sim.base_url, read_timeout=0.3, total_timeout=1.0)
    first = await llm.generate_result_async(image)
    sim.script(["500"] * 3)
    again = await llm.generate_result_async(image.clone())
    assert (again.text, again.source) == (first.text, "cache")


def test_per_image_digests_match_single_digests():
    """A batch's per-image digests equal each image's own digest (same key either way)."""
    batch = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    per_image = image_digests(batch, per_image=True)
    assert per_image == [image_digests(batch[i : i + 1], per_image=False)[0] for i in range(3)]
    assert len(set(per_image)) == 3
