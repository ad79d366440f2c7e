"""ErrorMetrics: exact, thread-safe counts of errors and resilience events."""

from __future__ import annotations

import json
import threading

import pytest

from pixel_llm_otel.errors import APIError, ErrorCode, TimeoutError
from pixel_llm_otel.monitoring import ErrorMetrics
from pixel_llm_otel.resilience import GLOBAL_BUS
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from pixel_llm_otel.resilience.events import (
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    FallbackInvoked,
    RetryAttempt,
    RetryExhaustedEvent,
    RetrySucceeded,
)
from pixel_llm_otel.resilience.retry import RetryConfig, RetryPolicy

READ_TIMEOUT = TimeoutError(code=ErrorCode.TIMEOUT_READ)


def _attempt(n: int = 1) -> RetryAttempt:
    return RetryAttempt(
        name="llm",
        attempt=n,
        delay=0.5,
        error_type="TimeoutError",
        error_code="ERR_TIMEOUT_READ",
        error=READ_TIMEOUT,
    )


def test_record_error_counts_by_type_code_and_category() -> None:
    """record_error classifies and counts; foreign exceptions get their qualified type."""
    m = ErrorMetrics()
    m.record_error(READ_TIMEOUT)
    m.record_error(APIError(status=429, code=ErrorCode.RATE_LIMITED))
    result = m.record_error(ConnectionRefusedError(111, "refused"))
    assert result.code is ErrorCode.CONNECTION_REFUSED
    errors = m.summary()["errors"]
    assert errors == {
        "total": 3,
        "by_type": {"APIError": 1, "ConnectionRefusedError": 1, "TimeoutError": 1},
        "by_code": {"ERR_CONNECTION_REFUSED": 1, "ERR_RATE_LIMITED": 1, "ERR_TIMEOUT_READ": 1},
        "by_category": {"connection": 1, "rate_limit": 1, "timeout": 1},
    }
    assert m.total_errors == 3


def test_events_feed_retry_breaker_and_fallback_counters() -> None:
    """Each event kind lands in its own counter; retried errors count as errors too."""
    m = ErrorMetrics()
    for event in (
        _attempt(1),
        _attempt(2),
        RetrySucceeded(name="llm", attempts=3),
        _attempt(1),
        RetryExhaustedEvent(
            name="llm",
            attempts=2,
            error_type="TimeoutError",
            error_code="ERR_TIMEOUT_READ",
            reason="max_attempts",
            error=READ_TIMEOUT,
        ),
        CircuitBreakerStateChange(
            name="llm", from_state="closed", to_state="open", reason="consecutive_failures", at=1.0
        ),
        CircuitBreakerStateChange(
            name="llm", from_state="open", to_state="half_open", reason="cooldown_elapsed", at=2.0
        ),
        CircuitBreakerRejected(name="llm", state="half_open"),
        FallbackInvoked(
            strategy="cache",
            result="empty",
            error_type="TimeoutError",
            error_code="ERR_TIMEOUT_READ",
        ),
        FallbackInvoked(
            strategy="default",
            result="served",
            error_type="TimeoutError",
            error_code="ERR_TIMEOUT_READ",
        ),
    ):
        m.on_event(event)
    s = m.summary()
    assert s["retries"] == {
        "retries": 3,
        "retried_by_code": {"ERR_TIMEOUT_READ": 3},
        "successes_after_retry": 1,
        "attempts": 5,
        "exhausted": 1,
        "exhausted_by_reason": {"max_attempts": 1},
    }
    assert s["errors"]["by_code"] == {"ERR_TIMEOUT_READ": 3}
    assert s["circuit_breakers"] == {
        "transitions": {"llm": {"closed->open": 1, "open->half_open": 1}},
        "states": {"llm": "half_open"},
        "rejected": {"llm": 1},
    }
    assert s["fallbacks"] == {
        "served": 1,
        "empty": 1,
        "by_strategy": {"cache": {"empty": 1}, "default": {"served": 1}},
    }
    assert m.breaker_state("llm") == "half_open"
    assert m.breaker_state("other") is None
    assert json.loads(json.dumps(s)) == s


def test_unknown_events_are_ignored_and_reset_zeroes() -> None:
    """An object that is no known event changes nothing; reset() forgets everything."""
    m = ErrorMetrics()
    m.on_event(object())  # type: ignore[arg-type]
    m.record_error(READ_TIMEOUT)
    m.on_event(
        CircuitBreakerStateChange(
            name="b", from_state="closed", to_state="open", reason="forced_open", at=0.0
        )
    )
    m.reset()
    assert m.summary() == ErrorMetrics().summary()
    assert m.summary()["errors"]["total"] == 0


def test_hammered_from_threads_the_counts_are_exact() -> None:
    """16 threads x 500 iterations of mixed inputs: no increment is lost."""
    m = ErrorMetrics()
    threads_n, rounds = 16, 500
    start = threading.Barrier(threads_n)

    def work(i: int) -> None:
        start.wait()
        for _ in range(rounds):
            m.record_error(READ_TIMEOUT)
            m.on_event(_attempt())
            m.on_event(RetrySucceeded(name="llm", attempts=2))
            m.on_event(
                CircuitBreakerStateChange(
                    name=f"b{i % 4}", from_state="closed", to_state="open", reason="x", at=0.0
                )
            )
            m.on_event(
                FallbackInvoked(
                    strategy="cache",
                    result="served",
                    error_type="TimeoutError",
                    error_code="ERR_TIMEOUT_READ",
                )
            )
            m.on_event(CircuitBreakerRejected(name="llm", state="open"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = threads_n * rounds
    s = m.summary()
    assert s["errors"]["total"] == 2 * total
    assert s["errors"]["by_code"] == {"ERR_TIMEOUT_READ": 2 * total}
    assert s["retries"]["retries"] == total
    assert s["retries"]["successes_after_retry"] == total
    assert s["retries"]["attempts"] == 2 * total
    assert s["circuit_breakers"]["transitions"] == {
        f"b{k}": {"closed->open": total // 4} for k in range(4)
    }
    assert s["circuit_breakers"]["rejected"] == {"llm": total}
    assert s["fallbacks"]["served"] == total


def test_fed_by_real_primitives_through_the_global_bus() -> None:
    """Subscribed to GLOBAL_BUS, it sees a real retry policy and breaker at work."""
    m = ErrorMetrics()
    GLOBAL_BUS.subscribe(m)
    policy = RetryPolicy(
        RetryConfig(max_attempts=3, jitter=False), name="llm", sleep=lambda _: None
    )
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise READ_TIMEOUT
        return "ok"

    assert policy.call(flaky) == "ok"
    breaker = CircuitBreaker("metrics-llm", CircuitBreakerConfig(failure_threshold=2))

    def down() -> None:
        raise ConnectionRefusedError(111, "refused")

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            breaker.call(down)
    with pytest.raises(Exception, match="is open"):
        breaker.call(down)
    s = m.summary()
    assert s["retries"]["retries"] == 2
    assert s["retries"]["successes_after_retry"] == 1
    assert s["retries"]["attempts"] == 3
    assert s["circuit_breakers"]["transitions"]["metrics-llm"] == {"closed->open": 1}
    assert s["circuit_breakers"]["states"]["metrics-llm"] == "open"
    assert s["circuit_breakers"]["rejected"] == {"metrics-llm": 1}
