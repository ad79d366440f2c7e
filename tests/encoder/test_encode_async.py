"""encode_async runs the encoder off the event loop, one pass at a time."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from _support.encoder_gate import ForwardGate

from pixel_llm_otel.encoder import EncoderConfig, VisionEncoder

#: Big enough that one pass is real torch work (the gate below holds it open, not its size).
MEDIUM = EncoderConfig(image_size=64, patch_size=8, embed_dim=256, num_layers=4, num_heads=8)


async def test_loop_stays_responsive_while_encoding() -> None:
    """The loop runs other code while a forward pass is in flight (on another thread).

    The pass waits at a gate that only code running on the loop opens; had the encode blocked
    the loop, the gate would time out. No lag bound, so a loaded machine cannot fail it.
    """
    with VisionEncoder(MEDIUM, device="cpu") as enc:
        gate = ForwardGate(enc)
        try:
            encoding = asyncio.create_task(enc.encode_async(torch.rand(8, 3, 64, 64)))
            await gate.wait_entered()  # the loop keeps running while the pass is under way
            assert not encoding.done()
            gate.release()  # from the loop, while the pass waits for it
            out = await encoding
        finally:
            gate.restore()
    assert gate.released_in_time, "the forward pass blocked the event loop"
    assert threading.get_ident() not in gate.pass_threads
    assert out.features.shape == (8, 256)


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
