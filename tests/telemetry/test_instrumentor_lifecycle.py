"""PixelLLMInstrumentor: install, uninstall, entry point, failure isolation, sampling."""

from __future__ import annotations

import importlib.metadata
import logging

import aiohttp
import pytest
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from otel_support import REQUEST, RESPONSE, Captured, make_captured

from pixel_llm_otel import hooks
from pixel_llm_otel.resilience import GLOBAL_BUS, FallbackInvoked, RetryAttempt
from pixel_llm_otel.telemetry import PixelLLMInstrumentor, failure_count
from pixel_llm_otel.telemetry._http import HttpSpans
from pixel_llm_otel.telemetry._listener import TelemetryListener
from pixel_llm_otel.telemetry._observer import OTelObserver


def _run_story(obs: hooks.PipelineObserver) -> None:
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.encode(encoder_type="vit", device="cpu", batch_size=1):
            pass
        with obs.chat(REQUEST) as c:
            GLOBAL_BUS.emit(
                RetryAttempt(
                    name="llm",
                    attempt=1,
                    delay=0.0,
                    error_type="TimeoutError",
                    error_code="ERR_TIMEOUT_READ",
                    error=TimeoutError(),
                )
            )
            c.response(RESPONSE)
        g.finish(outcome="success", attempts=2)


def test_entry_point_names_the_instrumentor() -> None:
    """opentelemetry-instrument finds PixelLLMInstrumentor under opentelemetry_instrumentor."""
    (ep,) = [
        e
        for e in importlib.metadata.entry_points(group="opentelemetry_instrumentor")
        if e.name == "pixel_llm_otel"
    ]
    assert ep.load() is PixelLLMInstrumentor
    assert PixelLLMInstrumentor()._check_dependency_conflicts() is None


def test_instrument_installs_and_uninstrument_removes_everything() -> None:
    """Observer, HTTP observer and bus listener come and go together; aiohttp is never patched."""
    cap = make_captured()
    assert isinstance(hooks.get_observer(), OTelObserver)
    assert isinstance(hooks.get_http_observer(), HttpSpans)
    assert any(isinstance(x, TelemetryListener) for x in GLOBAL_BUS.listeners)
    assert not AioHttpClientInstrumentor().is_instrumented_by_opentelemetry
    assert not hasattr(aiohttp.ClientSession.__init__, "__wrapped__")

    PixelLLMInstrumentor().uninstrument()

    assert hooks.get_observer() is hooks.NOOP_OBSERVER
    assert hooks.get_http_observer() is None
    assert not any(isinstance(x, TelemetryListener) for x in GLOBAL_BUS.listeners)
    _run_story(hooks.get_observer())
    GLOBAL_BUS.emit(
        FallbackInvoked(strategy="cache", result="served", error_type="X", error_code="ERR_UNKNOWN")
    )
    assert cap.spans() == []
    assert cap.points("pixel_llm.retry.attempts") == []
    assert cap.points("pixel_llm.fallback.invocations") == []


def test_host_aiohttp_instrumentation_is_left_alone() -> None:
    """If the host instrumented aiohttp, we neither re-instrument nor uninstrument it."""
    AioHttpClientInstrumentor().instrument()
    try:
        make_captured()
        PixelLLMInstrumentor().uninstrument()
        assert AioHttpClientInstrumentor().is_instrumented_by_opentelemetry
    finally:
        AioHttpClientInstrumentor().uninstrument()


def test_reinstrument_keeps_the_breaker_gauge_alive() -> None:
    """After uninstrument / instrument on the same providers the state gauge still reports."""
    cap = make_captured(instrument_http=False)
    PixelLLMInstrumentor().uninstrument()
    PixelLLMInstrumentor().instrument(
        tracer_provider=cap.tracer_provider,
        meter_provider=cap.meter_provider,
        instrument_http=False,
    )
    from pixel_llm_otel.resilience import CircuitBreakerStateChange

    GLOBAL_BUS.emit(
        CircuitBreakerStateChange(
            name="gauge-test", from_state="closed", to_state="open", reason="forced_open", at=0.0
        )
    )
    states = {
        dict(k)["pixel_llm.circuit_breaker.state"]: v
        for k, v in cap.values("pixel_llm.circuit_breaker.state").items()
        if dict(k)["pixel_llm.circuit_breaker.name"] == "gauge-test"
    }
    assert states == {"closed": 0, "open": 1, "half_open": 0}


class _Exploding:
    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"telemetry bug in {name}")


def test_telemetry_failures_never_reach_the_app(
    captured: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken tracer and broken instruments: the story runs, app errors pass unchanged."""
    observer = hooks.get_observer()
    assert isinstance(observer, OTelObserver)
    observer.tracer = _Exploding()  # type: ignore[assignment]
    observer.instruments = _Exploding()  # type: ignore[assignment]
    listener = next(x for x in GLOBAL_BUS.listeners if isinstance(x, TelemetryListener))
    listener._instruments = _Exploding()  # type: ignore[assignment]
    caplog.set_level(logging.WARNING, logger="pixel_llm_otel.telemetry")

    for _ in range(3):
        _run_story(observer)
    app_error = ValueError("the app's own error")
    with pytest.raises(ValueError) as raised, observer.chat(REQUEST) as c:
        c.fail(app_error)
        raise app_error

    assert raised.value is app_error
    assert failure_count() > 3
    logged = [r for r in caplog.records if r.name == "pixel_llm_otel.telemetry"]
    sites = [r.getMessage() for r in logged]
    assert len(sites) == len(set(sites)), "each failing site is logged once"
    assert captured.spans() == []


def test_unsampled_traces_still_record_metrics() -> None:
    """With an always-off sampler there are no spans, but the metrics are complete."""
    cap = make_captured(instrument_http=False, tracer_kwargs={"sampler": ALWAYS_OFF})
    _run_story(hooks.get_observer())
    assert cap.spans() == []
    assert sum(cap.values("pixel_llm.generate.requests").values()) == 1
    assert sum(cap.values("pixel_llm.retry.attempts").values()) == 1
    (point,) = cap.points("gen_ai.client.operation.duration")
    assert point.exemplars == []
