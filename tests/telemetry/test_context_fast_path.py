"""The hot path's context and propagation shortcuts do exactly what the API calls do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pixel_llm_otel.telemetry import _context

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


@pytest.fixture
def default_propagator() -> Iterator[None]:
    """The SDK's default global propagator (W3C trace context + baggage), restored after."""
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    yield
    propagate.set_global_textmap(previous)


def _context_with(span_context: SpanContext, *, with_baggage: bool = False) -> otel_context.Context:
    ctx = trace.set_span_in_context(NonRecordingSpan(span_context))
    return baggage.set_baggage("tenant", "a b", ctx) if with_baggage else ctx


@pytest.mark.parametrize(
    ("flags", "state", "with_baggage"),
    [
        (TraceFlags.SAMPLED, None, False),
        (TraceFlags.DEFAULT, None, False),
        (TraceFlags.SAMPLED | 0x02, TraceState([("vendor", "v1"), ("other", "x")]), False),
        (TraceFlags.SAMPLED, None, True),
    ],
    ids=["sampled", "not-sampled", "random-flag-and-tracestate", "baggage"],
)
@pytest.mark.usefixtures("default_propagator")
def test_inject_writes_what_the_global_propagator_writes(
    flags: int, state: TraceState | None, with_baggage: bool
) -> None:
    """Same headers as propagate.inject, byte for byte, with the default W3C propagators."""
    span_context = SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(flags), state)
    ctx = _context_with(span_context, with_baggage=with_baggage)
    expected: dict[str, str] = {}
    propagate.inject(expected, context=ctx)
    ours: dict[str, str] = {}
    _context.inject(ours, ctx, span_context)
    assert ours == expected
    assert ("baggage" in ours) is with_baggage


@pytest.mark.usefixtures("default_propagator")
def test_an_invalid_span_context_propagates_nothing() -> None:
    """No span (or an invalid one): no traceparent, as the propagator does."""
    headers: dict[str, str] = {}
    _context.inject(headers, otel_context.get_current(), trace.INVALID_SPAN_CONTEXT)
    assert headers == {}


def test_another_global_propagator_is_used_as_it_is() -> None:
    """A host's own propagator (here trace context only, under another header name) is used."""

    class Renamed(TraceContextTextMapPropagator):
        _TRACEPARENT_HEADER_NAME = "x-traceparent"

    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(Renamed())
    try:
        span_context = SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(TraceFlags.SAMPLED))
        headers: dict[str, str] = {}
        _context.inject(headers, _context_with(span_context), span_context)
    finally:
        propagate.set_global_textmap(previous)
    assert list(headers) == ["x-traceparent"]


def test_attach_and_detach_change_the_api_current_context() -> None:
    """attach/detach/current_context are the API's current context, not a copy of it."""
    ctx = _context_with(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(TraceFlags.SAMPLED)))
    before = otel_context.get_current()
    token = _context.attach(ctx)
    try:
        assert otel_context.get_current() is ctx
        assert _context.current_context() is ctx
    finally:
        _context.detach(token)
    assert otel_context.get_current() is before
