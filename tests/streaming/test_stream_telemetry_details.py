"""Streamed-call telemetry details: semconv buckets, content capture of the assembled text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import torch
from stream_support import CHAT_SPAN, Captured, instrument

from pixel_llm_otel.pipeline import HybridPixelLLM

SEMCONV_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


@pytest.mark.parametrize(
    "metric",
    [
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
    ],
    ids=["ttfc", "time-per-chunk"],
)
async def test_stream_histograms_use_the_semconv_boundaries(
    make_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured: Captured, metric: str
) -> None:
    """Both streaming histograms carry the GenAI semconv duration bucket boundaries."""
    llm = make_llm()
    async with llm.stream_async(image) as stream:
        assert [c async for c in stream]
    (point,) = captured.points(metric)
    assert tuple(point.explicit_bounds) == SEMCONV_DURATION_BUCKETS


@pytest.fixture
def captured_content() -> Iterator[Captured]:
    """Instrumentation with content capture opted in."""
    cap, undo = instrument(capture_content=True)
    yield cap
    undo()


async def test_content_capture_records_the_assembled_output(
    make_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured_content: Captured
) -> None:
    """With capture on, gen_ai.output.messages holds the whole streamed text, once."""
    llm = make_llm()
    async with llm.stream_async(image) as stream:
        chunks = [c async for c in stream]
    attrs = captured_content.span(CHAT_SPAN).attributes or {}
    (message,) = json.loads(str(attrs["gen_ai.output.messages"]))
    assert message["role"] == "assistant"
    assert [p["content"] for p in message["parts"]] == ["".join(chunks)]
    assert "gen_ai.input.messages" in attrs
