"""Resilience primitives: retry with backoff, a circuit breaker, fallbacks, and their events.

This package must not import OpenTelemetry: telemetry subscribes to the events in ``events``.
"""

from __future__ import annotations

from .events import (
    GLOBAL_BUS,
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    EventBus,
    FallbackInvoked,
    Listener,
    ResilienceEvent,
    RetryAttempt,
    RetryExhaustedEvent,
    RetrySucceeded,
)

__all__ = [
    "GLOBAL_BUS",
    "CircuitBreakerRejected",
    "CircuitBreakerStateChange",
    "EventBus",
    "FallbackInvoked",
    "Listener",
    "ResilienceEvent",
    "RetryAttempt",
    "RetryExhaustedEvent",
    "RetrySucceeded",
]
