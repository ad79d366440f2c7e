"""Through the real pipeline and simulator: images as blob parts, usage details, and the
official GenAI openai instrumentation in the same process."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import torch
from genai_schema import check_messages
from opentelemetry import metrics, trace
from otel_support import Captured, make_captured

from pixel_llm_otel import hooks
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim import SimulatorServer
from pixel_llm_otel.telemetry._observer import OTelObserver

MODEL = "sim-model"
CHAT = f"chat {MODEL}"


class _Encoder:
    """A stand-in for the ViT: per-channel means."""

    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["mean " + ", ".join(f"{v:.2f}" for v in row.tolist()) for row in features]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(port=0, seed=1) as server:
        yield server


async def _caption(sim: SimulatorServer, **options: Any) -> Any:
    logger = StructuredLogger("pixel_llm_otel.genai_test", stream=io.StringIO())
    llm = HybridPixelLLM(sim.base_url, MODEL, encoder=_Encoder(), logger=logger, **options)
    try:
        image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
        return await llm.generate_result_async(image)
    finally:
        await llm.aclose()
        logger.close()


@pytest.mark.parametrize("cap_bytes", [None, 1 << 20], ids=["hash-only", "within-cap"])
async def test_the_image_the_pipeline_sends_is_a_blob_part(
    sim: SimulatorServer, cap_bytes: int | None
) -> None:
    """send_image: the PNG is a blob (mime, size, sha256); bytes only within the cap."""
    cap = make_captured(capture_content="span_and_event", content_image_max_bytes=cap_bytes)
    result = await _caption(sim, send_image=True)
    assert result.source == "llm"

    chat = cap.span(CHAT)
    attributes = dict(chat.attributes or {})
    (message,) = check_messages(str(attributes["gen_ai.input.messages"]))
    text, blob = message["parts"]
    assert text["type"] == "text"
    assert "Visual features" in text["content"]
    assert (blob["type"], blob["modality"], blob["mime_type"]) == ("blob", "image", "image/png")
    assert ("content" in blob) is (cap_bytes is not None)
    if "content" in blob:
        png = base64.b64decode(blob["content"])
        assert png.startswith(b"\x89PNG")
        assert len(png) == blob["size"]
        assert hashlib.sha256(png).hexdigest() == blob["sha256"]
    (event,) = cap.logs("gen_ai.client.inference.operation.details")
    assert json.loads(event.attributes["gen_ai.input.messages"]) == [message]
    # the simulator reports usage details for image requests
    assert attributes["gen_ai.usage.image.input_tokens"] == 85
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 0


async def test_default_mode_puts_no_content_anywhere(sim: SimulatorServer) -> None:
    """Nothing opted in: no message content on any span or log record."""
    cap = make_captured()
    await _caption(sim, send_image=True)
    for span in cap.spans():
        assert not [k for k in (span.attributes or {}) if "messages" in k or "instructions" in k]
    assert cap.logs() == []


def _points_by_scope(cap: Captured, metric: str) -> dict[str, int]:
    data = cap.reader.get_metrics_data()
    found: dict[str, int] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == metric:
                    found[sm.scope.name] = sum(p.count for p in m.data.data_points)
    return found


async def test_official_openai_instrumentation_in_the_same_process(sim: SimulatorServer) -> None:
    """Both instrumented: each call counted once, by its own scope; no provider taken over."""
    openai = pytest.importorskip("openai")
    genai_openai = pytest.importorskip("opentelemetry.instrumentation.genai.openai")
    global_tracer, global_meter = trace.get_tracer_provider(), metrics.get_meter_provider()
    cap = make_captured()
    instrumentor = genai_openai.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    try:
        await _caption(sim)
        client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-test-coexist-123456")
        try:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hello"}]
            )
        finally:
            await client.close()
    finally:
        instrumentor.uninstrument()

    assert _points_by_scope(cap, "gen_ai.client.operation.duration") == {
        "pixel_llm_otel": 1,
        "opentelemetry.instrumentation.genai.openai": 1,
    }
    assert isinstance(hooks.get_observer(), OTelObserver)
    assert trace.get_tracer_provider() is global_tracer
    assert metrics.get_meter_provider() is global_meter
    ours = [s for s in cap.spans() if s.instrumentation_scope.name == "pixel_llm_otel"]
    assert [s.name for s in ours if s.name.startswith("chat")] == [CHAT]
    assert len([s for s in ours if s.name == "POST"]) == 1


async def test_a_streamed_call_reports_the_same_usage_details(sim: SimulatorServer) -> None:
    """The usage chunk's details (image, cache-read, reasoning tokens) reach the chat span of a
    streamed call, as they do for a plain one."""
    cap = make_captured()
    logger = StructuredLogger("pixel_llm_otel.genai_test", stream=io.StringIO())
    llm = HybridPixelLLM(sim.base_url, MODEL, encoder=_Encoder(), logger=logger, send_image=True)
    try:
        image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
        async with llm.stream_async(image) as stream:
            chunks = [chunk async for chunk in stream]
        assert chunks
        assert stream.result.source == "llm"
    finally:
        await llm.aclose()
        logger.close()
    attributes = dict(cap.span(CHAT).attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.image.input_tokens"] == 85
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 0
