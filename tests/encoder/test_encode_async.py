"""encode_async runs the encoder off the event loop, one pass at a time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from pixel_llm_otel.encoder import EncoderConfig, VisionEncoder

#: Big enough that one pass takes a good fraction of a second on a laptop CPU.
MEDIUM = EncoderConfig(image_size=64, patch_size=8, embed_dim=256, num_layers=4, num_heads=8)
LAG_BOUND_S = 0.25
TICKS = 20
MAX_ROUNDS = 500


async def test_loop_stays_responsive_while_encoding() -> None:
    """A ticker keeps ticking (lag under a generous bound) while a batch encodes.

    The forward pass repeats real torch work until the ticker has ticked TICKS times, so the
    encode lasts long enough on any machine; had it blocked the loop, no tick could happen
    and the round cap would end it with too few ticks.
    """
    ticks = 0
    max_lag = 0.0
    rounds = 0
    with VisionEncoder(MEDIUM, device="cpu") as enc:
        real_forward = enc._forward

        def busy_forward(batch: torch.Tensor) -> torch.Tensor:
            nonlocal rounds
            out = real_forward(batch)
            rounds = 1
            while ticks < TICKS and rounds < MAX_ROUNDS:
                out = real_forward(batch)
                rounds += 1
            return out

        enc._forward = busy_forward  # type: ignore[method-assign]
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal max_lag, ticks
            interval = 0.01
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(interval)
                max_lag = max(max_lag, time.perf_counter() - before - interval)
                ticks += 1

        task = asyncio.create_task(ticker())
        out = await enc.encode_async(torch.rand(8, 3, 64, 64))
        stop.set()
        await task
    assert out.features.shape == (8, 256)
    assert ticks >= TICKS, f"only {ticks} ticks in {rounds} forward passes: the loop was blocked"
    assert max_lag < LAG_BOUND_S, f"event loop stalled {max_lag:.3f}s while encoding"


async def test_encode_async_uses_one_worker_thread_serially() -> None:
    """Concurrent encode_async calls run on the encoder's one worker, never two at once."""
    with VisionEncoder(
        EncoderConfig(image_size=32, patch_size=8, embed_dim=64, num_layers=2, num_heads=4),
        device="cpu",
    ) as enc:
        threads: set[str] = set()
        active = 0
        peak = 0
        guard = threading.Lock()
        real_forward = enc._forward

        def counting_forward(batch: torch.Tensor) -> torch.Tensor:
            nonlocal active, peak
            with guard:
                active += 1
                peak = max(peak, active)
                threads.add(threading.current_thread().name)
            try:
                return real_forward(batch)
            finally:
                with guard:
                    active -= 1

        enc._forward = counting_forward  # type: ignore[method-assign]
        images = torch.rand(4, 3, 32, 32)
        results = await asyncio.gather(*(enc.encode_async(images) for _ in range(6)))
    assert peak == 1
    assert len(threads) == 1
    assert next(iter(threads)).startswith("pixel-llm-encoder")
    for result in results[1:]:
        torch.testing.assert_close(result.features, results[0].features)


async def test_encode_async_after_close_raises() -> None:
    """A closed encoder refuses async work too."""
    enc = VisionEncoder(
        EncoderConfig(image_size=32, patch_size=8, embed_dim=64, num_layers=1, num_heads=4),
        device="cpu",
    )
    enc.close()
    with pytest.raises(RuntimeError, match="closed"):
        await enc.encode_async(torch.rand(1, 3, 32, 32))
