"""Pipeline streams over real HTTP: every ending ends each span once, with its status, metrics,
the connection released and the breaker settled."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest
import torch
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from stream_support import (
    CHAT_SPAN,
    LONG,
    Captured,
    connections_in_use,
    errors,
    wait_until,
)

from pixel_llm_otel.errors import RetryExhausted, StreamInterrupted
from pixel_llm_otel.pipeline import AsyncCaptionStream, HybridPixelLLM
from pixel_llm_otel.sim import FaultSpec, SimulatorServer

GENERATE = "pixel_llm.generate"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
TPOC = "gen_ai.client.operation.time_per_output_chunk"
REQUESTS = "pixel_llm.generate.requests"


def assert_ended_once(captured: Captured) -> None:
    """One generate and one chat span were exported, and nothing was ended twice."""
    assert len(captured.spans(GENERATE)) == 1
    assert len(captured.spans(CHAT_SPAN)) == 1
    assert captured.warnings == []
    chat, generate = captured.span(CHAT_SPAN), captured.span(GENERATE)
    assert chat.parent is not None
    assert chat.parent.span_id == generate.context.span_id


async def read(stream: AsyncCaptionStream, limit: int | None = None) -> list[str]:
    """Read up to ``limit`` chunks (all when ``None``)."""
    chunks: list[str] = []
    async for chunk in stream:
        chunks.append(chunk)
        if limit is not None and len(chunks) >= limit:
            break
    return chunks


async def test_completed_stream(
    make_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured: Captured
) -> None:
    """Exhausted: completed, usage from the usage chunk, TTFC once, one gap per later chunk."""
    llm = make_llm()
    async with llm.stream_async(image) as stream:
        chunks = await read(stream)
    result = stream.result
    assert result is not None
    assert (result.end, result.source, result.finish_reason) == ("completed", "llm", "stop")
    assert result.text == "".join(chunks)
    assert result.usage is not None
    assert result.usage.output_tokens == len(chunks)
    assert result.trace_id == format(captured.span(GENERATE).context.trace_id, "032x")
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["pixel_llm.stream.end"] == "completed"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.output_tokens"] == len(chunks)
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] < chat.end_time - chat.start_time
    assert chat.status.status_code is StatusCode.UNSET
    assert captured.count(TTFC) == 1
    assert captured.count(TPOC) == len(chunks) - 1
    assert captured.count(REQUESTS, pixel_llm__outcome="success") == 1
    assert connections_in_use(llm) == 0
    snap = llm.circuit_breaker.snapshot()
    assert (snap.successes, snap.failures) == (1, 0)


@pytest.mark.parametrize(
    "how", ["break-in-context", "aclose", "exception-in-body"], ids=lambda v: v
)
async def test_caller_stops_early_is_closed(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
    how: str,
) -> None:
    """break + context exit, aclose() or an error in the loop body: closed, success, no failure."""
    sim.script([{"kind": "stream_stall", "after": 4, "seconds": LONG}])  # holds the connection
    llm = make_llm()
    stream = llm.stream_async(image)
    if how == "break-in-context":
        async with stream:
            assert len(await read(stream, 2)) == 2
    elif how == "aclose":
        await read(stream, 2)
        await stream.aclose()
        await stream.aclose()  # idempotent
    else:
        with pytest.raises(ZeroDivisionError):
            async with stream:
                async for _ in stream:
                    _ = 1 / 0
    result = stream.result
    assert result is not None
    assert result.end == "closed"
    assert result.error is None
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.attributes["pixel_llm.stream.end"] == "closed"
    assert "error" in chat.attributes["gen_ai.response.finish_reasons"]
    assert chat.status.status_code is StatusCode.UNSET
    assert captured.span(GENERATE).attributes["pixel_llm.outcome"] == "success"
    assert captured.count(REQUESTS, pixel_llm__outcome="success") == 1
    assert captured.count(TTFC) == 1
    await wait_until(lambda: connections_in_use(llm) == 0)
    snap = llm.circuit_breaker.snapshot()
    assert (snap.successes, snap.failures) == (0, 0)


async def test_cancelled_task(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
) -> None:
    """The consuming task cancelled mid-stream: cancelled, not an error, not a breaker failure."""
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    llm = make_llm()
    stream = llm.stream_async(image)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.result is not None
    assert stream.result.end == "cancelled"
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.attributes["pixel_llm.stream.end"] == "cancelled"
    assert chat.status.status_code is StatusCode.UNSET
    assert "error" in chat.attributes["gen_ai.response.finish_reasons"]
    await wait_until(lambda: connections_in_use(llm) == 0)
    assert llm.circuit_breaker.snapshot().failures == 0


@pytest.mark.parametrize(
    ("step", "options", "cause"),
    [
        ({"kind": "stream_reset", "after": 3}, {}, "ERR_CONNECTION_RESET"),
        ({"kind": "stream_malformed", "after": 3}, {}, "ERR_RESPONSE_MALFORMED"),
        ({"kind": "stream_truncated", "after": 3}, {}, "ERR_CONNECTION_RESET"),
        (
            {"kind": "stream_stall", "after": 3, "seconds": LONG},
            {"idle_timeout": 0.2},
            "ERR_TIMEOUT_READ",
        ),
        (
            {"kind": "stream_stall", "after": 3, "seconds": LONG},
            {"timeout": 0.5},
            "ERR_TIMEOUT_TOTAL",
        ),
    ],
    ids=["reset", "malformed", "no-done", "idle-timeout", "deadline"],
)
async def test_interrupted_after_the_first_chunk(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
    step: dict[str, Any],
    options: dict[str, Any],
    cause: str,
) -> None:
    """A failure after content raises StreamInterrupted, no retry: ERROR span, breaker failure."""
    if step["kind"] == "stream_reset":  # paced: a reset discards what the client has not read
        await sim.set_scenario(FaultSpec(stream_chunk_delay=0.02))
    sim.script([step, "ok"])
    llm = make_llm()
    stream = llm.stream_async(image, **options)
    chunks: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        async with stream:
            async for chunk in stream:
                chunks.append(chunk)
    assert info.value.cause_code == cause
    assert info.value.chunks == len(chunks) == 2
    result = stream.result
    assert result is not None
    assert (result.end, result.text, result.attempts) == ("interrupted", "".join(chunks), 1)
    assert result.error is info.value
    assert sim.stats().count("/v1/chat/completions") == 1  # not retried
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes["error.type"] == "StreamInterrupted"
    assert chat.attributes["pixel_llm.stream.end"] == "interrupted"
    assert "error" in chat.attributes["gen_ai.response.finish_reasons"]
    generate = captured.span(GENERATE)
    assert generate.status.status_code is StatusCode.ERROR
    assert generate.attributes["pixel_llm.outcome"] == "error"
    assert captured.count(REQUESTS, pixel_llm__outcome="error") == 1
    assert captured.count(TTFC, error__type="StreamInterrupted") == 1
    await wait_until(lambda: connections_in_use(llm) == 0)
    snap = llm.circuit_breaker.snapshot()
    assert (snap.successes, snap.failures) == (0, 1)


async def test_failures_before_content_are_retried(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
) -> None:
    """Empty stream, no [DONE] before content, bad first event, 503: retried like generate."""
    sim.script(
        [
            "stream_empty",
            {"kind": "stream_truncated", "after": 1},
            {"kind": "stream_malformed", "after": 0},
            "503",
            "ok",
        ]
    )
    llm = make_llm(error_config=errors(attempts=5))
    async with llm.stream_async(image) as stream:
        chunks = await read(stream)
    result = stream.result
    assert result is not None
    assert (result.end, result.source, result.attempts) == ("completed", "llm", 5)
    assert result.text == "".join(chunks)
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.attributes["pixel_llm.attempts"] == 5
    assert chat.status.status_code is StatusCode.UNSET
    assert [e.name for e in chat.events].count("pixel_llm.retry") == 4
    assert captured.count(TTFC) == 1
    assert connections_in_use(llm) == 0
    assert llm.circuit_breaker.snapshot().successes == 1


async def test_fallback_before_the_first_chunk_is_the_one_chunk(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
) -> None:
    """Every attempt fails before content: the default fallback is the stream's single chunk."""
    sim.script(["stream_empty"] * 3)
    llm = make_llm(error_config=errors(attempts=3, default_value="(no caption)"))
    async with llm.stream_async(image) as stream:
        chunks = await read(stream)
    assert chunks == ["(no caption)"]
    result = stream.result
    assert result is not None
    assert (result.end, result.source, result.text, result.chunks) == (
        "completed",
        "default",
        "(no caption)",
        1,
    )
    assert isinstance(result.error, RetryExhausted)
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.status.status_code is StatusCode.ERROR
    assert "error" in chat.attributes["gen_ai.response.finish_reasons"]
    generate = captured.span(GENERATE)
    assert generate.attributes["pixel_llm.outcome"] == "fallback"
    assert generate.attributes["pixel_llm.fallback.strategy"] == "default"
    assert generate.status.status_code is StatusCode.UNSET
    assert captured.count(TTFC) == 0
    assert connections_in_use(llm) == 0
    assert llm.circuit_breaker.snapshot().failures == 1


@pytest.mark.parametrize("raise_on_failure", [False, True], ids=["empty-stream", "raises"])
async def test_nothing_served(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
    raise_on_failure: bool,
) -> None:
    """No fallback: no chunk and result.error, or the typed error with raise_on_failure."""
    sim.script(["503"] * 2)
    llm = make_llm(error_config=errors(attempts=2))
    stream = llm.stream_async(image, raise_on_failure=raise_on_failure)
    if raise_on_failure:
        with pytest.raises(RetryExhausted):
            await read(stream)
    else:
        assert await read(stream) == []
    result = stream.result
    assert result is not None
    assert (result.text, result.source, result.attempts) == (None, None, 2)
    assert_ended_once(captured)
    assert captured.span(GENERATE).status.status_code is StatusCode.ERROR
    assert captured.count(REQUESTS, pixel_llm__outcome="error") == 1


async def test_dropped_stream_is_abandoned_and_releases_everything(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
) -> None:
    """A stream dropped unfinished is ended by the GC: abandoned, connection back, no failure."""
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    llm = make_llm()
    stream = llm.stream_async(image)
    await read(stream, 1)
    assert connections_in_use(llm) == 1
    del stream
    gc.collect()
    assert_ended_once(captured)
    chat = captured.span(CHAT_SPAN)
    assert chat.attributes["pixel_llm.stream.end"] == "abandoned"
    assert chat.status.status_code is StatusCode.UNSET
    await wait_until(lambda: connections_in_use(llm) == 0)
    assert llm.circuit_breaker.snapshot().failures == 0


async def test_usage_absent_when_the_server_sends_none(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    captured: Captured,
    sim: SimulatorServer,
) -> None:
    """A llama.cpp-like server (no usage chunk): no usage anywhere, nothing estimated."""
    await sim.set_scenario(FaultSpec(stream_usage=False))
    llm = make_llm()
    async with llm.stream_async(image) as stream:
        await read(stream)
    assert stream.result is not None
    assert stream.result.usage is None
    attrs = captured.span(CHAT_SPAN).attributes or {}
    assert "gen_ai.usage.input_tokens" not in attrs
    assert "gen_ai.usage.output_tokens" not in attrs
    assert captured.points("gen_ai.client.token.usage") == []


async def test_caller_spans_between_chunks_are_not_ours(
    make_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured: Captured
) -> None:
    """A span the caller starts in its loop body is a sibling of ours, not a child."""
    tracer = trace.get_tracer("caller", tracer_provider=None)
    llm = make_llm()
    seen: list[Any] = []
    async with llm.stream_async(image) as stream:
        async for _ in stream:
            seen.append(trace.get_current_span())
            with tracer.start_as_current_span("caller-work"):
                pass
    ours = {captured.span(CHAT_SPAN).context.span_id, captured.span(GENERATE).context.span_id}
    assert all(span.get_span_context().span_id not in ours for span in seen)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"idle_timeout": -1.0}, "idle_timeout"),
        ({"timeout": "5"}, "timeout"),
    ],
    ids=["zero-timeout", "negative-idle", "text-deadline"],
)
async def test_bad_stream_limits_raise_at_the_call(
    make_llm: Callable[..., HybridPixelLLM],
    image: torch.Tensor,
    sim: SimulatorServer,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    """deadline / timeout / idle_timeout must be seconds > 0: ValidationError naming the field,
    raised at the call, before any request."""
    from pixel_llm_otel.errors import ValidationError

    llm = make_llm()
    with pytest.raises(ValidationError) as info:
        llm.stream_async(image, **kwargs)
    assert info.value.field == field
    assert sim.stats().total == 0
