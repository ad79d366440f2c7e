"""With the real ViT encoder: the event loop stays responsive, send_image, lifecycle."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from _support.encoder_gate import ForwardGate
from pipeline_support import RecordingObserver

from pixel_llm_otel.encoder import build_encoder
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim import SimulatorServer


@pytest.fixture(scope="module")
def vit():
    """One real encoder (default ViT) shared by this module's tests."""
    encoder = build_encoder("vit", None, device="cpu")
    yield encoder
    encoder.close()


async def test_event_loop_stays_responsive_while_encoding(sim: SimulatorServer, make_llm, vit):
    """The loop runs other code while generate's encoder pass is in flight (off the loop).

    The pass waits at a gate that only code running on the loop opens (no lag bound, so a
    loaded machine cannot fail it); then the call completes through the simulator.
    """
    llm = make_llm(sim.base_url, encoder=vit)
    images = torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    gate = ForwardGate(vit)
    try:
        call = asyncio.create_task(llm.generate_result_async(images))
        await gate.wait_entered()  # the loop keeps running while the pass is under way
        assert not call.done()
        gate.release()  # from the loop, while the pass waits for it
        result = await call
    finally:
        gate.restore()
    assert gate.released_in_time, "the encoder pass blocked the event loop"
    assert threading.get_ident() not in gate.pass_threads
    assert result.source == "llm"


async def test_send_image_adds_a_png_image_url_part(
    sim: SimulatorServer, make_llm, vit, observer: RecordingObserver
):
    """send_image=True sends the prompt text plus the image as a base64 PNG data URL."""
    llm = make_llm(sim.base_url, encoder=vit, send_image=True)
    assert await llm.generate_async(torch.rand(3, 32, 32)) is not None
    (message,) = observer.seen.chats[0]["request"].messages
    text, picture = message["content"]
    assert text["type"] == "text"
    assert picture["type"] == "image_url"
    assert picture["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert observer.seen.encodes[0]["device"] == "cpu"


async def test_async_context_manager_closes_everything(sim: SimulatorServer, vit, image):
    """`async with` closes the clients and later calls raise a clear RuntimeError."""
    async with HybridPixelLLM(sim.base_url, "sim-model", encoder=vit) as llm:
        assert await llm.generate_async(image) is not None
    with pytest.raises(RuntimeError, match="closed"):
        await llm.generate_async(image)
    await llm.aclose()  # idempotent


def test_sync_context_manager_builds_the_encoder_once_and_closes(sim_thread, image):
    """The default encoder is built at construction, reused, and closed by `with`."""
    with HybridPixelLLM(
        sim_thread.base_url,
        "sim-model",
        device="cpu",
        encoder_config={"embed_dim": 64, "num_heads": 4, "num_layers": 1},
    ) as llm:
        encoder = llm.encoder
        assert llm.generate(image) is not None
        assert llm.generate(image) is not None
        assert llm.encoder is encoder
        assert encoder.config.embed_dim == 64
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate(image)
    llm.close()  # idempotent
