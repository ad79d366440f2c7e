"""Sampled-out calls: one span start (the sampler's decision), no other span, every metric point,
and the trace context (not sampled) still sent to the server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import torch
from _support.pipelines import closing_pipelines
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from otel_support import Captured, make_captured

from pixel_llm_otel import hooks
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience.retry import RetryConfig
from pixel_llm_otel.sim import SimulatorServer
from pixel_llm_otel.telemetry._scope import FULL, LIGHT, OFF, scope_mode

MODEL = "sim-model"
PARENT = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.DEFAULT),
)


class _Encoder:
    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["a test pattern"] * int(features.shape[0])


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(port=0, seed=1) as server:
        yield server


@pytest.fixture
async def make_llm(sim: SimulatorServer) -> AsyncIterator[Callable[[], HybridPixelLLM]]:
    logger = StructuredLogger("pixel_llm_otel.sampled_out_test", stream=io.StringIO())
    async with closing_pipelines(logger) as build:

        def make() -> HybridPixelLLM:
            retry = RetryConfig(max_attempts=3, initial_delay=0.001, max_delay=0.002, jitter=False)
            return build(
                sim.base_url, MODEL, encoder=_Encoder(), logger=logger,
                error_config={"retry": retry},
            )  # fmt: skip

        yield make


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))


@pytest.fixture(autouse=True)
def _host_aiohttp_off() -> Iterator[None]:
    """The host's aiohttp instrumentation never outlives a test."""
    yield
    if AioHttpClientInstrumentor().is_instrumented_by_opentelemetry:
        AioHttpClientInstrumentor().uninstrument()


def _sampled_out(**kwargs: Any) -> Captured:
    return make_captured(tracer_kwargs={"sampler": ParentBased(ALWAYS_OFF)}, **kwargs)


def _count_span_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the spans our tracer is asked to start, from now on."""
    tracer = hooks.get_observer().tracer  # type: ignore[attr-defined]
    started: list[str] = []
    original = tracer.start_span

    def start_span(name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(tracer, "start_span", start_span)
    return started


def _flags(traceparent: str) -> tuple[str, str, int]:
    _version, trace_id, span_id, flags = traceparent.split("-")
    return trace_id, span_id, int(flags, 16)


def _collect_points(cap: Captured) -> dict[str, list[Any]]:
    """Every metric's points from ONE collection (a collection resets the exemplar reservoirs)."""
    data = cap.reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def _requests(cap: Captured) -> dict[tuple[str, str | None], int]:
    return {
        (dict(k)["pixel_llm.outcome"], dict(k).get("error.type")): v
        for k, v in cap.values("pixel_llm.generate.requests").items()
    }


async def test_a_sampled_out_call_starts_one_span_and_records_every_metric(
    monkeypatch: pytest.MonkeyPatch, sim: SimulatorServer, make_llm: Any, image: torch.Tensor
) -> None:
    """Sampler says no: only generate is started, no span exported, every metric point kept."""
    cap = _sampled_out()
    started = _count_span_starts(monkeypatch)
    sim.script(["503", "ok"])
    result = await make_llm().generate_result_async(image)
    assert (result.source, result.attempts) == ("llm", 2)
    assert started == ["pixel_llm.generate"]
    assert cap.spans() == []
    assert _requests(cap) == {("success", None): 1}
    points = _collect_points(cap)
    for metric in ("pixel_llm.generate.duration", "pixel_llm.encoder.duration",
                   "gen_ai.client.operation.duration"):  # fmt: skip
        (point,) = points[metric]
        assert point.count == 1
        assert point.exemplars == []  # no sampled span to point at
    tokens = {dict(p.attributes)["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input", "output"}
    assert sum(cap.values("pixel_llm.retry.attempts").values()) == 1
    assert sum(cap.values("pixel_llm.errors").values()) == 1


async def test_the_server_gets_the_trace_context_not_sampled(
    monkeypatch: pytest.MonkeyPatch, sim: SimulatorServer, make_llm: Any, image: torch.Tensor
) -> None:
    """Each attempt carries the call's traceparent, sampled flag off, under the caller's trace."""
    make_captured(tracer_kwargs={"sampler": ParentBased(ALWAYS_ON)})
    started = _count_span_starts(monkeypatch)
    sim.script(["503", "ok"])
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(PARENT)))
    try:
        result = await make_llm().generate_result_async(image)
    finally:
        otel_context.detach(token)
    assert started == ["pixel_llm.generate"]  # a parent-based sampler followed the caller
    assert result.trace_id == format(PARENT.trace_id, "032x")
    sent = [_flags(tp) for tp in sim.stats().traceparents if tp is not None]
    assert len(sent) == 2
    assert {trace_id for trace_id, _, _ in sent} == {result.trace_id}
    assert all(flags & 0x01 == 0 for _, _, flags in sent)
    assert len({span_id for _, span_id, _ in sent}) == 1  # the dropped generate span's id


async def test_sampled_calls_keep_every_span_and_their_exemplars(
    monkeypatch: pytest.MonkeyPatch, sim: SimulatorServer, make_llm: Any, image: torch.Tensor
) -> None:
    """Sampled: four spans, and each histogram's exemplar points at the span that timed it."""
    cap = make_captured(tracer_kwargs={"sampler": ParentBased(ALWAYS_ON)})
    started = _count_span_starts(monkeypatch)
    await make_llm().generate_result_async(image)
    assert started == ["pixel_llm.generate", "pixel_llm.encode", f"chat {MODEL}", "POST"]
    points = _collect_points(cap)
    for metric, span in (
        ("pixel_llm.generate.duration", "pixel_llm.generate"),
        ("pixel_llm.encoder.duration", "pixel_llm.encode"),
        ("gen_ai.client.operation.duration", f"chat {MODEL}"),
    ):
        (point,) = points[metric]
        assert [e.span_id for e in point.exemplars] == [cap.span(span).context.span_id], metric
    (traceparent,) = [tp for tp in sim.stats().traceparents if tp is not None]
    assert _flags(traceparent)[1] == format(cap.span("POST").context.span_id, "016x")


async def test_host_aiohttp_instrumentation_adds_nothing_to_a_sampled_out_call(
    sim: SimulatorServer, make_llm: Any, image: torch.Tensor
) -> None:
    """With the host's aiohttp instrumentation on, a sampled-out call's traceparent is still
    ours (the host's is suppressed for our request) and no span is exported."""
    cap = _sampled_out(before=lambda tp: AioHttpClientInstrumentor().instrument(tracer_provider=tp))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(PARENT)))
    try:
        await make_llm().generate_result_async(image)
    finally:
        otel_context.detach(token)
    assert cap.spans() == []
    (traceparent,) = [tp for tp in sim.stats().traceparents if tp is not None]
    trace_id, span_id, flags = _flags(traceparent)
    assert (trace_id, flags & 0x01) == (format(PARENT.trace_id, "032x"), 0)
    assert span_id != format(PARENT.span_id, "016x")  # generate's own (dropped) span


@pytest.mark.parametrize(
    ("span_context", "mode"),
    [
        (None, FULL),
        (PARENT, LIGHT),
        (SpanContext(PARENT.trace_id, PARENT.span_id, False, TraceFlags(TraceFlags.SAMPLED)), FULL),
        (trace.INVALID_SPAN_CONTEXT, FULL),
    ],
    ids=["no-parent", "unsampled-parent", "sampled-parent", "invalid-parent"],
)
def test_scope_mode_follows_the_parent_span(span_context: SpanContext | None, mode: int) -> None:
    """LIGHT only under a valid span whose trace is not sampled; OFF when suppressed."""
    ctx = otel_context.get_current()
    if span_context is not None:
        ctx = trace.set_span_in_context(NonRecordingSpan(span_context), ctx)
    assert scope_mode(ctx) == mode
    token = otel_context.attach(ctx)
    try:
        with suppress_instrumentation():
            assert not is_instrumentation_enabled()
            assert scope_mode(otel_context.get_current()) == OFF
    finally:
        otel_context.detach(token)


async def test_a_sampler_that_keeps_children_of_an_unsampled_parent_gets_them(
    sim: SimulatorServer, make_llm: Any, image: torch.Tensor
) -> None:
    """Root dropped, children sampled (ParentBased local_parent_not_sampled=ALWAYS_ON): the
    child spans are started and exported as that sampler asks; no scope goes light."""
    sampler = ParentBased(ALWAYS_OFF, local_parent_not_sampled=ALWAYS_ON)
    cap = make_captured(tracer_kwargs={"sampler": sampler})
    result = await make_llm().generate_result_async(image)
    assert result.source == "llm"
    names = sorted(span.name for span in cap.spans())
    assert names == sorted(["pixel_llm.encode", f"chat {MODEL}", "POST"])
    assert _requests(cap) == {("success", None): 1}


def test_light_scopes_only_for_samplers_that_drop_children_of_unsampled_parents() -> None:
    """The light mode is allowed for the SDK default and ParentBased(ALWAYS_OFF) only."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    from pixel_llm_otel.telemetry._scope import LightPolicy

    def allowed(sampler: Any) -> bool:
        return LightPolicy(TracerProvider(sampler=sampler).get_tracer("t"))()

    assert allowed(ParentBased(ALWAYS_ON))  # the SDK default
    assert allowed(ParentBased(ALWAYS_OFF))
    assert not allowed(ParentBased(ALWAYS_OFF, local_parent_not_sampled=ALWAYS_ON))
    assert not allowed(ALWAYS_ON)
    assert not allowed(TraceIdRatioBased(0.5))
    assert not LightPolicy(trace.NoOpTracer())()  # not an SDK tracer: spans as usual
