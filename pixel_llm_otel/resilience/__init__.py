"""Resilience primitives: retry with backoff, a circuit breaker, fallbacks, and their events.

This package must not import OpenTelemetry: telemetry subscribes to the events in ``events``.
"""

from __future__ import annotations

from ._clock import FakeClock
from .circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerSnapshot,
    CircuitState,
    all_breakers,
)
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
from .fallback import (
    MISSING,
    FallbackConfig,
    FallbackContext,
    FallbackManager,
    FallbackResult,
    FallbackStats,
)
from .retry import (
    RetryConfig,
    RetryPolicy,
    RetryStats,
    current_attempt,
    deadline_scope,
    is_testing,
    remaining_budget,
    retry,
    set_testing,
)

__all__ = [
    "GLOBAL_BUS",
    "MISSING",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerRejected",
    "CircuitBreakerSnapshot",
    "CircuitBreakerStateChange",
    "CircuitState",
    "EventBus",
    "FakeClock",
    "FallbackConfig",
    "FallbackContext",
    "FallbackInvoked",
    "FallbackManager",
    "FallbackResult",
    "FallbackStats",
    "Listener",
    "ResilienceEvent",
    "RetryAttempt",
    "RetryConfig",
    "RetryExhaustedEvent",
    "RetryPolicy",
    "RetryStats",
    "RetrySucceeded",
    "all_breakers",
    "current_attempt",
    "deadline_scope",
    "is_testing",
    "remaining_budget",
    "retry",
    "set_testing",
]
