"""The observer turns the pipeline's scopes into the contract's span tree, events and metrics."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from otel_support import REQUEST, RESPONSE, Captured

from pixel_llm_otel.errors import (
    CircuitBreakerOpen,
    EncoderError,
    ErrorCode,
    RetryExhausted,
    TimeoutError,
    ValidationError,
)
from pixel_llm_otel.resilience import (
    GLOBAL_BUS,
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    FallbackInvoked,
    RetryAttempt,
    RetryExhaustedEvent,
)


def _timeout() -> TimeoutError:
    return TimeoutError("read timed out", code=ErrorCode.TIMEOUT_READ)


def test_success_builds_the_contract_tree(captured: Captured) -> None:
    """generate -> encode + chat: names, kinds, parents, attributes, unset status."""
    obs = captured.observer
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.encode(encoder_type="vit", device="cpu", batch_size=1):
            pass
        with obs.chat(REQUEST) as c:
            c.response(RESPONSE)
            c.attempts(1)
        g.finish(outcome="success", attempts=1)

    gen, enc, chat = (
        captured.span(n) for n in ("pixel_llm.generate", "pixel_llm.encode", "chat qwen2-vl")
    )
    assert [s.name for s in captured.spans()] == [
        "pixel_llm.encode",
        "chat qwen2-vl",
        "pixel_llm.generate",
    ]
    assert gen.parent is None
    assert enc.parent is not None
    assert enc.parent.span_id == gen.context.span_id
    assert chat.parent is not None
    assert chat.parent.span_id == gen.context.span_id
    assert {s.context.trace_id for s in (gen, enc, chat)} == {gen.context.trace_id}
    assert (gen.kind, enc.kind, chat.kind) == (
        SpanKind.INTERNAL,
        SpanKind.INTERNAL,
        SpanKind.CLIENT,
    )
    assert dict(gen.attributes or {}) == {
        "pixel_llm.batch.size": 1,
        "pixel_llm.outcome": "success",
        "pixel_llm.attempts": 1,
    }
    assert dict(enc.attributes or {}) == {
        "pixel_llm.encoder.type": "vit",
        "pixel_llm.encoder.device": "cpu",
        "pixel_llm.batch.size": 1,
    }
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "lm_studio",
        "gen_ai.request.model": "qwen2-vl",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "server.address": "127.0.0.1",
        "server.port": 1234,
        "gen_ai.response.model": "qwen2-vl-7b",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 7,
        "pixel_llm.attempts": 1,
    }
    assert all(s.status.status_code is StatusCode.UNSET for s in captured.spans())
    assert captured.points("pixel_llm.errors") == []


def test_scope_makes_its_span_current_and_restores_context(captured: Captured) -> None:
    """Inside a scope its span is current; after it (even after an exception) the old one."""
    obs = captured.observer
    before = trace.get_current_span()
    with obs.generate(model="m", batch_size=1, provider="p") as g:
        current = trace.get_current_span().get_span_context()
        assert g.trace_id == format(current.trace_id, "032x")
        with pytest.raises(RuntimeError), obs.chat(REQUEST):
            assert trace.get_current_span().get_span_context().span_id != current.span_id
            raise RuntimeError("boom")
        assert trace.get_current_span().get_span_context().span_id == current.span_id
    assert trace.get_current_span() is before


def test_retry_event_lands_on_the_chat_span(captured: Captured) -> None:
    """A RetryAttempt inside the chat scope: pixel_llm.retry event, retry and error counters."""
    obs = captured.observer
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.chat(REQUEST) as c:
            GLOBAL_BUS.emit(
                RetryAttempt(
                    name="llm",
                    attempt=1,
                    delay=0.5,
                    error_type="TimeoutError",
                    error_code="ERR_TIMEOUT_READ",
                    error=_timeout(),
                )
            )
            c.response(RESPONSE)
            c.attempts(2)
        g.finish(outcome="success", attempts=2)

    chat = captured.span("chat qwen2-vl")
    assert [(e.name, dict(e.attributes or {})) for e in chat.events] == [
        (
            "pixel_llm.retry",
            {
                "pixel_llm.retry.attempt": 1,
                "pixel_llm.retry.delay_s": 0.5,
                "error.type": "TimeoutError",
                "pixel_llm.error.code": "ERR_TIMEOUT_READ",
            },
        )
    ]
    assert captured.span("pixel_llm.generate").events == ()
    assert chat.status.status_code is StatusCode.UNSET
    assert captured.values("pixel_llm.retry.attempts") == {
        frozenset(
            {"error.type": "TimeoutError", "pixel_llm.error.code": "ERR_TIMEOUT_READ"}.items()
        ): 1
    }
    assert captured.values("pixel_llm.errors") == {
        frozenset(
            {
                "error.type": "TimeoutError",
                "pixel_llm.error.code": "ERR_TIMEOUT_READ",
                "pixel_llm.error.category": "timeout",
            }.items()
        ): 1
    }


def test_exhausted_retries_then_cache_fallback(captured: Captured) -> None:
    """Chat fails (ERROR), the cache serves: generate is not an error, outcome fallback."""
    obs = captured.observer
    last = _timeout()
    exhausted = RetryExhausted(attempts=3, last_error=last)
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.chat(REQUEST) as c:
            for attempt in (1, 2):
                GLOBAL_BUS.emit(
                    RetryAttempt(
                        name="llm",
                        attempt=attempt,
                        delay=0.1,
                        error_type="TimeoutError",
                        error_code="ERR_TIMEOUT_READ",
                        error=_timeout(),
                    )
                )
            GLOBAL_BUS.emit(
                RetryExhaustedEvent(
                    name="llm",
                    attempts=3,
                    error_type="TimeoutError",
                    error_code="ERR_TIMEOUT_READ",
                    reason="max_attempts",
                    error=last,
                )
            )
            c.attempts(3)
            c.fail(exhausted)
        GLOBAL_BUS.emit(
            FallbackInvoked(
                strategy="cache",
                result="served",
                error_type="RetryExhausted",
                error_code="ERR_RETRY_EXHAUSTED",
            )
        )
        g.finish(outcome="fallback", attempts=3, fallback_strategy="cache", error=exhausted)

    chat, gen = captured.span("chat qwen2-vl"), captured.span("pixel_llm.generate")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes is not None
    assert chat.attributes["error.type"] == "RetryExhausted"
    assert [e.name for e in chat.events] == ["pixel_llm.retry", "pixel_llm.retry", "exception"]
    assert gen.status.status_code is StatusCode.UNSET
    assert dict(gen.attributes or {}) == {
        "pixel_llm.batch.size": 1,
        "pixel_llm.outcome": "fallback",
        "pixel_llm.attempts": 3,
        "pixel_llm.fallback.strategy": "cache",
    }
    assert [(e.name, dict(e.attributes or {})) for e in gen.events] == [
        (
            "pixel_llm.fallback",
            {
                "pixel_llm.fallback.strategy": "cache",
                "pixel_llm.fallback.result": "served",
                "error.type": "RetryExhausted",
            },
        )
    ]
    timeouts = {
        "error.type": "TimeoutError",
        "pixel_llm.error.code": "ERR_TIMEOUT_READ",
        "pixel_llm.error.category": "timeout",
    }
    assert captured.values("pixel_llm.errors") == {frozenset(timeouts.items()): 3}
    assert captured.values("pixel_llm.retry.exhausted") == {
        frozenset({"error.type": "TimeoutError"}.items()): 1
    }
    assert captured.values("pixel_llm.fallback.invocations") == {
        frozenset(
            {"pixel_llm.fallback.strategy": "cache", "pixel_llm.fallback.result": "served"}.items()
        ): 1
    }
    assert captured.values("pixel_llm.generate.requests") == {
        frozenset({"pixel_llm.outcome": "fallback", "gen_ai.request.model": "qwen2-vl"}.items()): 1
    }
    (duration,) = captured.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "lm_studio",
        "gen_ai.request.model": "qwen2-vl",
        "server.address": "127.0.0.1",
        "server.port": 1234,
        "error.type": "RetryExhausted",
    }
    assert captured.points("gen_ai.client.token.usage") == []


def test_breaker_events_and_metrics(captured: Captured) -> None:
    """Transition and rejection: events on the active span, counters, the state gauge."""
    obs = captured.observer
    with obs.generate(model="m", batch_size=1, provider="p") as g:
        with obs.chat(REQUEST) as c:
            GLOBAL_BUS.emit(
                CircuitBreakerStateChange(
                    name="llm",
                    from_state="closed",
                    to_state="open",
                    reason="consecutive_failures",
                    at=1.0,
                )
            )
            GLOBAL_BUS.emit(CircuitBreakerRejected(name="llm", state="open"))
            c.fail(CircuitBreakerOpen(breaker_name="llm"))
        g.finish(outcome="error", attempts=0, error=CircuitBreakerOpen(breaker_name="llm"))

    chat = captured.span("chat qwen2-vl")
    assert [(e.name, dict(e.attributes or {})) for e in chat.events][:2] == [
        (
            "pixel_llm.circuit_breaker.state_change",
            {
                "pixel_llm.circuit_breaker.name": "llm",
                "pixel_llm.circuit_breaker.from_state": "closed",
                "pixel_llm.circuit_breaker.to_state": "open",
                "pixel_llm.circuit_breaker.reason": "consecutive_failures",
            },
        ),
        (
            "pixel_llm.circuit_breaker.rejected",
            {"pixel_llm.circuit_breaker.name": "llm", "pixel_llm.circuit_breaker.state": "open"},
        ),
    ]
    assert captured.values("pixel_llm.circuit_breaker.transitions") == {
        frozenset(
            {
                "pixel_llm.circuit_breaker.name": "llm",
                "pixel_llm.circuit_breaker.from_state": "closed",
                "pixel_llm.circuit_breaker.to_state": "open",
            }.items()
        ): 1
    }
    assert captured.values("pixel_llm.circuit_breaker.rejected") == {
        frozenset({"pixel_llm.circuit_breaker.name": "llm"}.items()): 1
    }
    gauge = {
        dict(k)["pixel_llm.circuit_breaker.state"]: v
        for k, v in captured.values("pixel_llm.circuit_breaker.state").items()
        if dict(k)["pixel_llm.circuit_breaker.name"] == "llm"
    }
    assert gauge == {"closed": 0, "open": 1, "half_open": 0}
    gen = captured.span("pixel_llm.generate")
    assert gen.status.status_code is StatusCode.ERROR
    assert gen.attributes is not None
    assert gen.attributes["error.type"] == "CircuitBreakerOpen"
    assert captured.values("pixel_llm.generate.requests") == {
        frozenset(
            {
                "pixel_llm.outcome": "error",
                "gen_ai.request.model": "m",
                "error.type": "CircuitBreakerOpen",
            }.items()
        ): 1
    }


@pytest.mark.parametrize(
    ("error", "error_type", "category"),
    [
        pytest.param(
            ValidationError(field="image", value=None, expected="a tensor"),
            "ValidationError",
            "validation",
            id="validation",
        ),
        pytest.param(RuntimeError("weird"), "RuntimeError", "unknown", id="foreign"),
    ],
)
def test_generate_error_is_counted_once(
    captured: Captured, error: Exception, error_type: str, category: str
) -> None:
    """finish(outcome=error) then the same exception escaping: one error, one exception event."""
    obs = captured.observer
    with pytest.raises(type(error)), obs.generate(model="m", batch_size=1, provider="p") as g:
        g.finish(outcome="error", attempts=0, error=error)
        raise error
    gen = captured.span("pixel_llm.generate")
    assert gen.status.status_code is StatusCode.ERROR
    assert gen.attributes is not None
    assert gen.attributes["error.type"] == error_type
    assert [e.name for e in gen.events] == ["exception"]
    assert sum(captured.values("pixel_llm.errors").values()) == 1
    ((attrs, _),) = captured.values("pixel_llm.errors").items()
    assert dict(attrs)["pixel_llm.error.category"] == category


def test_encoder_error_escaping_marks_encode_and_generate(captured: Captured) -> None:
    """An encoder exception escaping both scopes: both spans ERROR, counted once, duration kept."""
    obs = captured.observer
    err = EncoderError("CUDA out of memory", code=ErrorCode.ENCODER_OOM)
    with (
        pytest.raises(EncoderError),
        obs.generate(model="m", batch_size=2, provider="p"),
        obs.encode(encoder_type="vit", device="cuda:0", batch_size=2),
    ):
        raise err
    enc, gen = captured.span("pixel_llm.encode"), captured.span("pixel_llm.generate")
    for span in (enc, gen):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes is not None
        assert span.attributes["error.type"] == "EncoderError"
    assert gen.attributes is not None
    assert gen.attributes["pixel_llm.outcome"] == "error"
    assert captured.values("pixel_llm.errors") == {
        frozenset(
            {
                "error.type": "EncoderError",
                "pixel_llm.error.code": "ERR_ENCODER_OOM",
                "pixel_llm.error.category": "encoder",
            }.items()
        ): 1
    }
    assert captured.values("pixel_llm.encoder.duration") == {
        frozenset({"pixel_llm.encoder.device": "cuda:0"}.items()): 1
    }


def test_batch_parent_and_per_image_requests(captured: Captured) -> None:
    """generate_batch is the parent of per-image generate spans; requests count images only."""
    obs = captured.observer
    with obs.generate_batch(model="m", batch_size=2, provider="p") as b:
        with obs.encode(encoder_type="vit", device="cpu", batch_size=2):
            pass
        for _ in range(2):
            with obs.generate(model="m", batch_size=1, provider="p") as g:
                g.finish(outcome="success", attempts=1)
        b.finish(outcome="success", attempts=1)
    batch = captured.span("pixel_llm.generate_batch")
    children = [s for s in captured.spans() if s.name in ("pixel_llm.generate", "pixel_llm.encode")]
    assert len(children) == 3
    assert all(s.parent is not None and s.parent.span_id == batch.context.span_id for s in children)
    assert captured.values("pixel_llm.generate.requests") == {
        frozenset({"pixel_llm.outcome": "success", "gen_ai.request.model": "m"}.items()): 2
    }


def test_histograms_use_semconv_buckets_and_carry_exemplars(captured: Captured) -> None:
    """Duration and token histograms: semconv boundaries, token.type points, span exemplars."""
    obs = captured.observer
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.chat(REQUEST) as c:
            c.response(RESPONSE)
        g.finish(outcome="success", attempts=1)
    (duration,) = captured.points("gen_ai.client.operation.duration")
    assert list(duration.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    chat = captured.span("chat qwen2-vl")
    assert [e.span_id for e in duration.exemplars] == [chat.context.span_id]
    tokens = {
        dict(p.attributes)["gen_ai.token.type"]: p
        for p in captured.points("gen_ai.client.token.usage")
    }
    assert {k: (p.sum, p.count) for k, p in tokens.items()} == {"input": (42, 1), "output": (7, 1)}
    assert list(tokens["input"].explicit_bounds)[:3] == [1, 4, 16]
    assert list(tokens["input"].explicit_bounds)[-1] == 67108864
    assert dict(tokens["output"].attributes)["gen_ai.response.model"] == "qwen2-vl-7b"
    (gen_duration,) = captured.points("pixel_llm.generate.duration")
    assert dict(gen_duration.attributes) == {
        "pixel_llm.outcome": "success",
        "gen_ai.request.model": "qwen2-vl",
    }


def test_shared_attribute_sets_stay_per_call_and_bounded(captured: Captured) -> None:
    """Cached attribute sets: each call's facts stay its own; many settings keep it bounded."""
    from dataclasses import replace

    from pixel_llm_otel.telemetry import _observer

    obs = captured.observer
    for i in range(_observer.CACHE_MAX + 10):  # a new temperature each call: a new span set
        request = replace(REQUEST, temperature=i / 1000)
        with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
            with obs.chat(request) as c:
                c.response(replace(RESPONSE, response_id=f"chatcmpl-{i}"))
                c.attempts(1)
            g.finish(outcome="success" if i % 2 else "fallback", attempts=1)
    chats = [s for s in captured.spans() if s.name == "chat qwen2-vl"]
    assert [dict(s.attributes or {})["gen_ai.request.temperature"] for s in chats[-2:]] == [
        (_observer.CACHE_MAX + 8) / 1000,
        (_observer.CACHE_MAX + 9) / 1000,
    ]
    assert dict(chats[-1].attributes or {})["gen_ai.response.id"] == (
        f"chatcmpl-{_observer.CACHE_MAX + 9}"
    )
    assert len(obs.span_attributes._entries) <= _observer.CACHE_MAX  # type: ignore[attr-defined]
    assert captured.values("pixel_llm.generate.requests") == {
        frozenset({("pixel_llm.outcome", o), ("gen_ai.request.model", "qwen2-vl")}): 133
        for o in ("success", "fallback")
    }
