"""Events reach per-primitive listeners and GLOBAL_BUS; listeners cannot break calls; exports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from resilience_support import Recorder, fake_timing

import pixel_llm_otel.resilience as resilience
from pixel_llm_otel.errors import APIError, CircuitBreakerOpen, ErrorCode
from pixel_llm_otel.resilience import (
    GLOBAL_BUS,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStateChange,
    EventBus,
    FakeClock,
    FallbackConfig,
    FallbackInvoked,
    FallbackManager,
    ResilienceEvent,
    RetryAttempt,
    RetryConfig,
    RetryPolicy,
    RetrySucceeded,
)


def unavailable() -> APIError:
    return APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)


class Exploding:
    def on_event(self, event: ResilienceEvent) -> None:
        raise RuntimeError("listener bug")


def test_primitive_listeners_and_the_global_bus_both_see_events(
    clock: FakeClock, recorder: Recorder
) -> None:
    """An event goes to the primitive's own listeners and to GLOBAL_BUS."""
    own = Recorder()
    breaker = CircuitBreaker("b", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    policy = RetryPolicy(RetryConfig(max_attempts=2), **fake_timing(clock))
    fallback: FallbackManager[str] = FallbackManager(FallbackConfig(default_value="d"))
    for primitive in (breaker, policy, fallback):
        primitive.subscribe(own)
        assert primitive.bus._parent is GLOBAL_BUS
    errors = [unavailable(), unavailable()]

    def flaky() -> str:
        if errors:
            raise errors.pop()
        return "ok"

    with pytest.raises(APIError):
        breaker.call(flaky)
    policy.call(flaky)
    fallback.resolve(None, unavailable())
    kinds = [type(e) for e in own.events]
    assert kinds == [
        CircuitBreakerStateChange,
        RetryAttempt,
        RetrySucceeded,
        FallbackInvoked,
        FallbackInvoked,
    ]
    assert own.events == recorder.events


def test_a_raising_listener_never_breaks_the_protected_call(clock: FakeClock) -> None:
    """A listener bug is logged and swallowed: the breaker still refuses, the retry still runs."""
    bus = EventBus(parent=GLOBAL_BUS)
    bus.subscribe(Exploding())
    breaker = CircuitBreaker("b", CircuitBreakerConfig(failure_threshold=1), clock=clock, bus=bus)
    breaker.force_open()
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(lambda: None)


def test_retry_does_not_retry_an_open_breaker(clock: FakeClock) -> None:
    """retry(breaker.call(...)): CircuitBreakerOpen is not retryable, so it propagates at once."""
    breaker = CircuitBreaker("b", clock=clock)
    breaker.force_open()
    policy = RetryPolicy(**fake_timing(clock))
    with pytest.raises(CircuitBreakerOpen):
        policy.call(breaker.call, lambda: None)
    assert policy.stats().attempts == 1
    assert clock.sleeps == []


def test_all_lists_exactly_the_public_names() -> None:
    """__all__ is sorted-unique and covers every public name the package defines."""
    public = {
        name
        for name, value in vars(resilience).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(resilience.__all__) == public
    assert len(resilience.__all__) == len(set(resilience.__all__))


def test_resilience_never_imports_opentelemetry() -> None:
    """Importing and using the resilience package loads no OpenTelemetry module."""
    code = (
        "import sys, pixel_llm_otel.resilience as r\n"
        "r.CircuitBreaker('x').call(lambda: 1); r.retry(lambda: 1)()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
