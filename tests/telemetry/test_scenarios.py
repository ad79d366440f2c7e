"""The demo's story through HybridPixelLLM and the simulator: exact traces, events, metrics."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import torch
from _support.pipelines import closing_pipelines
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from otel_support import Captured, make_captured

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreakerConfig
from pixel_llm_otel.resilience.retry import RetryConfig
from pixel_llm_otel.sim import ManualClock, RecordingSleep, SimulatorServer

MODEL = "sim-model"
CHAT = f"chat {MODEL}"


class _Encoder:
    """A stand-in for the ViT: per-channel means; fails on demand."""

    device = "cpu"

    def __init__(self) -> None:
        self.error: Exception | None = None

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        if self.error is not None:
            raise self.error
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["mean " + ", ".join(f"{v:.2f}" for v in row.tolist()) for row in features]


def _errors(*, attempts: int = 3, threshold: int = 50, **fallback: Any) -> dict[str, Any]:
    return {
        "retry": RetryConfig(
            max_attempts=attempts, initial_delay=0.001, max_delay=0.005, jitter=False, deadline=10.0
        ),
        "circuit_breaker": CircuitBreakerConfig(
            failure_threshold=threshold, failure_rate_threshold=None, cooldown=10.0
        ),
        "fallback": fallback,
    }


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(port=0, seed=1) as server:
        yield server


@pytest.fixture
def cap() -> Captured:
    """Instrumented with in-memory exporters, aiohttp included."""
    return make_captured()


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))


@pytest.fixture
async def make_llm(sim: SimulatorServer) -> AsyncIterator[Callable[..., HybridPixelLLM]]:
    logger = StructuredLogger("pixel_llm_otel.telemetry_test", stream=io.StringIO())
    async with closing_pipelines(logger) as build:

        def make(**options: Any) -> HybridPixelLLM:
            options.setdefault("error_config", _errors())
            options.setdefault("encoder", _Encoder())
            return build(
                sim.base_url, MODEL, read_timeout=2.0, total_timeout=5.0, logger=logger, **options
            )

        yield make


def _tree(spans: list[ReadableSpan], root: ReadableSpan) -> tuple[Any, ...]:
    children = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    return (root.name, *[_tree(spans, c) for c in children])


def _trees(cap: Captured) -> list[tuple[Any, ...]]:
    spans = cap.spans()
    roots = sorted((s for s in spans if s.parent is None), key=lambda s: s.start_time or 0)
    return [_tree(spans, r) for r in roots]


def _last(cap: Captured, name: str) -> ReadableSpan:
    return [s for s in cap.spans() if s.name == name][-1]


def _events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


def _requests(cap: Captured) -> dict[tuple[str, str | None], int]:
    return {
        (dict(k)["pixel_llm.outcome"], dict(k).get("error.type")): v
        for k, v in cap.values("pixel_llm.generate.requests").items()
    }


SUCCESS_TREE = ("pixel_llm.generate", ("pixel_llm.encode",), (CHAT, ("POST",)))


async def test_success(cap: Captured, make_llm: Callable[..., HybridPixelLLM], image) -> None:
    """One attempt: generate -> encode + chat -> POST; success metrics; no events."""
    result = await make_llm().generate_result_async(image)
    assert result.source == "llm"
    assert _trees(cap) == [SUCCESS_TREE]
    gen, chat = cap.span("pixel_llm.generate"), cap.span(CHAT)
    assert result.trace_id == format(gen.context.trace_id, "032x")
    assert (gen.attributes or {})["pixel_llm.outcome"] == "success"
    assert (chat.attributes or {})["pixel_llm.attempts"] == 1
    assert (chat.attributes or {})["gen_ai.usage.output_tokens"] > 0
    assert all(s.status.status_code is StatusCode.UNSET for s in cap.spans() if s.name != "POST")
    assert _requests(cap) == {("success", None): 1}
    assert cap.points("pixel_llm.errors") == []


async def test_retry_then_success(
    cap: Captured, sim: SimulatorServer, make_llm: Callable[..., HybridPixelLLM], image
) -> None:
    """503 then ok: two POSTs (the second resent), one retry event, errors counted once."""
    sim.script(["503", "ok"])
    result = await make_llm().generate_result_async(image)
    assert (result.source, result.attempts) == ("llm", 2)
    assert _trees(cap) == [
        ("pixel_llm.generate", ("pixel_llm.encode",), (CHAT, ("POST",), ("POST",)))
    ]
    posts = [s for s in cap.spans() if s.name == "POST"]
    assert [(s.attributes or {}).get("http.request.resend_count") for s in posts] == [None, 1]
    chat = cap.span(CHAT)
    ((name, attributes),) = _events(chat)
    assert name == "pixel_llm.retry"
    assert attributes["pixel_llm.retry.attempt"] == 1
    assert attributes["pixel_llm.error.code"] == "ERR_HTTP_UNAVAILABLE"
    assert (chat.attributes or {})["pixel_llm.attempts"] == 2
    assert chat.status.status_code is StatusCode.UNSET
    assert sum(cap.values("pixel_llm.retry.attempts").values()) == 1
    assert sum(cap.values("pixel_llm.errors").values()) == 1
    assert _requests(cap) == {("success", None): 1}


async def test_retries_exhausted_then_cache(
    cap: Captured, sim: SimulatorServer, make_llm: Callable[..., HybridPixelLLM], image
) -> None:
    """Three 503s after a cached caption: chat ERROR, fallback event, outcome fallback."""
    llm = make_llm()
    await llm.generate_result_async(image)
    sim.script(["503"] * 3)
    result = await llm.generate_result_async(image)
    assert result.source == "cache"
    failing = (CHAT, ("POST",), ("POST",), ("POST",))
    assert _trees(cap) == [SUCCESS_TREE, ("pixel_llm.generate", ("pixel_llm.encode",), failing)]
    chat, gen = _last(cap, CHAT), _last(cap, "pixel_llm.generate")
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "RetryExhausted"
    assert [n for n, _ in _events(chat)] == ["pixel_llm.retry", "pixel_llm.retry", "exception"]
    assert gen.status.status_code is StatusCode.UNSET
    assert (gen.attributes or {})["pixel_llm.fallback.strategy"] == "cache"
    assert _events(gen) == [
        (
            "pixel_llm.fallback",
            {
                "pixel_llm.fallback.strategy": "cache",
                "pixel_llm.fallback.result": "served",
                "error.type": "RetryExhausted",
            },
        )
    ]
    assert sum(cap.values("pixel_llm.retry.exhausted").values()) == 1
    assert sum(cap.values("pixel_llm.errors").values()) == 3  # every failed attempt, once
    assert _requests(cap) == {("success", None): 1, ("fallback", None): 1}


async def test_breaker_open_then_default(
    cap: Captured, sim: SimulatorServer, make_llm: Callable[..., HybridPixelLLM], image
) -> None:
    """One failure opens the breaker; the next call is rejected and the default serves."""
    llm = make_llm(error_config=_errors(attempts=1, threshold=1, default_value="n/a"))
    sim.script(["500"])
    await llm.generate_result_async(image)
    result = await llm.generate_result_async(image)
    assert (result.source, result.text) == ("default", "n/a")
    first_chat, rejected_chat = [s for s in cap.spans() if s.name == CHAT]
    assert (
        "pixel_llm.circuit_breaker.state_change",
        {
            "pixel_llm.circuit_breaker.name": "lm_studio",
            "pixel_llm.circuit_breaker.from_state": "closed",
            "pixel_llm.circuit_breaker.to_state": "open",
            "pixel_llm.circuit_breaker.reason": "consecutive_failures",
        },
    ) in _events(first_chat)
    assert _trees(cap)[1] == ("pixel_llm.generate", ("pixel_llm.encode",), (CHAT,))
    assert _events(rejected_chat)[0] == (
        "pixel_llm.circuit_breaker.rejected",
        {"pixel_llm.circuit_breaker.name": "lm_studio", "pixel_llm.circuit_breaker.state": "open"},
    )
    assert (rejected_chat.attributes or {})["error.type"] == "CircuitBreakerOpen"
    gen = _last(cap, "pixel_llm.generate")
    assert [
        (a["pixel_llm.fallback.strategy"], a["pixel_llm.fallback.result"]) for _, a in _events(gen)
    ] == [("cache", "empty"), ("default", "served")]
    gauge = {
        dict(k)["pixel_llm.circuit_breaker.state"]: v
        for k, v in cap.values("pixel_llm.circuit_breaker.state").items()
        if dict(k)["pixel_llm.circuit_breaker.name"] == "lm_studio"
    }
    assert gauge == {"closed": 0, "open": 1, "half_open": 0}
    assert cap.values("pixel_llm.circuit_breaker.rejected") == {
        frozenset({"pixel_llm.circuit_breaker.name": "lm_studio"}.items()): 1
    }
    assert _requests(cap) == {("fallback", None): 2}


async def test_half_open_probe_closes_the_breaker(
    cap: Captured, sim: SimulatorServer, make_llm: Callable[..., HybridPixelLLM], image
) -> None:
    """After the cooldown the probe succeeds: open->half_open->closed on the probe's trace."""
    clock = ManualClock()
    llm = make_llm(
        error_config=_errors(attempts=1, threshold=1, default_value="n/a"),
        clock=clock,
        async_sleep=RecordingSleep(clock),
    )
    sim.script(["500"])
    await llm.generate_result_async(image)
    clock.advance(10.0)
    probe = await llm.generate_result_async(image)
    assert probe.source == "llm"
    assert _trees(cap)[1] == SUCCESS_TREE
    probe_trace = _last(cap, "pixel_llm.generate").context.trace_id
    moves = [
        (a["pixel_llm.circuit_breaker.from_state"], a["pixel_llm.circuit_breaker.to_state"])
        for s in cap.spans()
        if s.context.trace_id == probe_trace
        for n, a in _events(s)
        if n == "pixel_llm.circuit_breaker.state_change"
    ]
    assert moves == [("open", "half_open"), ("half_open", "closed")]
    transitions = {
        (
            dict(k)["pixel_llm.circuit_breaker.from_state"],
            dict(k)["pixel_llm.circuit_breaker.to_state"],
        ): v
        for k, v in cap.values("pixel_llm.circuit_breaker.transitions").items()
    }
    assert transitions == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }


async def test_validation_error(cap: Captured, make_llm: Callable[..., HybridPixelLLM]) -> None:
    """A bad tensor: one generate span, ERROR ValidationError, no encode or chat, counted."""
    with pytest.raises(ValidationError):
        await make_llm().generate_result_async(torch.full((3, 8, 8), float("nan")))
    assert _trees(cap) == [("pixel_llm.generate",)]
    gen = cap.span("pixel_llm.generate")
    assert gen.status.status_code is StatusCode.ERROR
    assert (gen.attributes or {})["error.type"] == "ValidationError"
    assert _requests(cap) == {("error", "ValidationError"): 1}


async def test_encoder_error(cap: Captured, make_llm: Callable[..., HybridPixelLLM], image) -> None:
    """The encoder fails: encode and generate ERROR EncoderError, no chat, one error."""
    encoder = _Encoder()
    encoder.error = RuntimeError("encoder exploded")
    result = await make_llm(encoder=encoder).generate_result_async(image)
    assert result.text is None
    assert _trees(cap) == [("pixel_llm.generate", ("pixel_llm.encode",))]
    for name in ("pixel_llm.generate", "pixel_llm.encode"):
        span = cap.span(name)
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "EncoderError"
    assert _requests(cap) == {("error", "EncoderError"): 1}
    assert cap.values("pixel_llm.errors") == {
        frozenset(
            {
                "error.type": "EncoderError",
                "pixel_llm.error.code": "ERR_ENCODER_RUNTIME",
                "pixel_llm.error.category": "encoder",
            }.items()
        ): 1
    }


async def test_concurrent_calls_keep_separate_traces(
    cap: Captured, make_llm: Callable[..., HybridPixelLLM]
) -> None:
    """Eight concurrent generate_async calls: eight traces, each its own complete tree."""
    llm = make_llm()
    images = [torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(8)]
    await asyncio.gather(*(llm.generate_async(i) for i in images))
    assert _trees(cap) == [SUCCESS_TREE] * 8
    spans = cap.spans()
    assert len({s.context.trace_id for s in spans}) == 8
    for span in spans:
        if span.parent is not None:
            (parent,) = [p for p in spans if p.context.span_id == span.parent.span_id]
            assert parent.context.trace_id == span.context.trace_id
