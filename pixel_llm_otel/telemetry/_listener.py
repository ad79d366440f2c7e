"""Resilience events become span events on the active span, and metrics.

Subscribed to :data:`~pixel_llm_otel.resilience.GLOBAL_BUS` by the instrumentor. Events are
delivered synchronously in the thread (and task) that caused them, so the current span is the one
the event belongs to: ``chat {model}`` for retries and breaker refusals, ``pixel_llm.generate`` for
fallbacks, whatever is active for a breaker transition.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..resilience.events import (
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    FallbackInvoked,
    ResilienceEvent,
    RetryAttempt,
    RetryExhaustedEvent,
)
from . import _names as n
from ._metrics import Instruments
from ._safety import safe

__all__ = ["TelemetryListener"]


def _add_event(name: str, attributes: dict[str, str | int | float]) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)


class TelemetryListener:
    """A resilience-event listener that records the contract's span events and metrics."""

    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}  # breaker name -> state, from transition events

    @safe("listener.on_event", None)
    def on_event(self, event: ResilienceEvent) -> None:
        if not is_instrumentation_enabled():  # inside suppress_instrumentation(): nothing of ours
            return
        if isinstance(event, RetryAttempt):
            self._retry(event)
        elif isinstance(event, RetryExhaustedEvent):
            self._instruments.retry_exhausted.add(1, {n.ERROR_TYPE: event.error_type})
        elif isinstance(event, CircuitBreakerStateChange):
            self._state_change(event)
        elif isinstance(event, CircuitBreakerRejected):
            _add_event(
                n.EVENT_BREAKER_REJECTED, {n.BREAKER_NAME: event.name, n.BREAKER_STATE: event.state}
            )
            self._instruments.breaker_rejected.add(1, {n.BREAKER_NAME: event.name})
        elif isinstance(event, FallbackInvoked):
            _add_event(
                n.EVENT_FALLBACK,
                {
                    n.FALLBACK_STRATEGY: event.strategy,
                    n.FALLBACK_RESULT: event.result,
                    n.ERROR_TYPE: event.error_type,
                },
            )
            self._instruments.fallback_invocations.add(
                1, {n.FALLBACK_STRATEGY: event.strategy, n.FALLBACK_RESULT: event.result}
            )
        # RetrySucceeded carries nothing the chat span's pixel_llm.attempts does not.

    def _retry(self, event: RetryAttempt) -> None:
        _add_event(
            n.EVENT_RETRY,
            {
                n.RETRY_ATTEMPT: event.attempt,
                n.RETRY_DELAY_S: event.delay,
                n.ERROR_TYPE: event.error_type,
                n.ERROR_CODE: event.error_code,
            },
        )
        self._instruments.retry_attempts.add(
            1, {n.ERROR_TYPE: event.error_type, n.ERROR_CODE: event.error_code}
        )
        self._instruments.count_error(event.error)

    def _state_change(self, event: CircuitBreakerStateChange) -> None:
        with self._lock:
            self._states[event.name] = event.to_state
        _add_event(
            n.EVENT_BREAKER_STATE_CHANGE,
            {
                n.BREAKER_NAME: event.name,
                n.BREAKER_FROM_STATE: event.from_state,
                n.BREAKER_TO_STATE: event.to_state,
                n.BREAKER_REASON: event.reason,
            },
        )
        self._instruments.breaker_transitions.add(
            1,
            {
                n.BREAKER_NAME: event.name,
                n.BREAKER_FROM_STATE: event.from_state,
                n.BREAKER_TO_STATE: event.to_state,
            },
        )

    def breaker_states(self) -> Iterable[tuple[str, str]]:
        """``(name, state)`` of every breaker known: live breakers and those seen in events.

        States come from transition events (a breaker starts closed). Live breakers are listed
        by name only, without reading their state, because reading it may perform a transition.
        """
        with self._lock:
            states = dict(self._states)
        for name in _live_breaker_names():
            states.setdefault(name, "closed")
        return sorted(states.items())

    @safe("listener.seed", None)
    def seed(self) -> None:
        """Learn the current state of live breakers (instrumenting after they changed state)."""
        for breaker in _live_breakers():
            snapshot = getattr(breaker, "snapshot", None)
            state = getattr(snapshot() if callable(snapshot) else None, "state", None)
            if state is not None:
                with self._lock:
                    name = str(getattr(breaker, "name", "default"))
                    self._states.setdefault(name, str(getattr(state, "value", state)))


def _live_breakers() -> list[object]:
    try:  # the module, looked up by its full name; tolerate its absence
        circuit_breaker = importlib.import_module("pixel_llm_otel.resilience.circuit_breaker")
    except ImportError:
        return []
    all_breakers = getattr(circuit_breaker, "all_breakers", None)
    return list(all_breakers()) if callable(all_breakers) else []


def _live_breaker_names() -> list[str]:
    return [str(getattr(b, "name", "default")) for b in _live_breakers()]
