"""Typed events emitted by the resilience primitives, and the listeners that receive them.

The resilience core knows nothing of OpenTelemetry, logging or metrics: it emits small frozen
dataclasses to listeners. ``ErrorMetrics``, the structured logger and the telemetry layer are all
listeners. A listener is any object with an ``on_event(event)`` method (:class:`Listener`).

Listeners are registered on an :class:`EventBus`. Each primitive has its own bus (for listeners
that care about one breaker) and publishes to the process-wide :data:`GLOBAL_BUS` as well, which
is what instrumentation subscribes to. A listener that raises never breaks the protected call: the
error is logged once per listener and swallowed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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

_log = logging.getLogger("pixel_llm_otel.resilience")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryAttempt:
    """An attempt failed with a retryable error; the next one starts after ``delay`` seconds."""

    name: str  # the retry policy's name (e.g. the wrapped function's qualified name)
    attempt: int  # the attempt that failed, from 1
    delay: float  # seconds slept before the next attempt
    error_type: str  # low-cardinality error identifier (``error.type``)
    error_code: str  # the ``ERR_*`` code
    error: BaseException = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySucceeded:
    """A call succeeded after at least one retry."""

    name: str
    attempts: int  # total attempts, including the successful one


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryExhaustedEvent:
    """The retry policy gave up (attempts used up, deadline reached, or non-retryable error)."""

    name: str
    attempts: int
    error_type: str  # of the last error
    error_code: str
    reason: str  # "max_attempts" | "deadline" | "not_retryable"
    error: BaseException = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerStateChange:
    """A breaker moved from one state to another. Exactly one event per transition."""

    name: str
    from_state: str  # "closed" | "open" | "half_open"
    to_state: str
    reason: str  # e.g. "consecutive_failures", "failure_rate", "cooldown_elapsed",
    # "probe_succeeded", "probe_failed", "forced_open", "reset"
    at: float  # the breaker clock's time of the transition


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerRejected:
    """A call was refused without being attempted."""

    name: str
    state: str  # "open", or "half_open" when every probe slot was taken


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackInvoked:
    """A fallback strategy was tried. One event per strategy tried, in order."""

    strategy: str  # "cache" | "default" | "custom"
    result: str  # "served" | "empty"
    error_type: str  # of the error that caused the fallback
    error_code: str


ResilienceEvent = (
    RetryAttempt
    | RetrySucceeded
    | RetryExhaustedEvent
    | CircuitBreakerStateChange
    | CircuitBreakerRejected
    | FallbackInvoked
)


@runtime_checkable
class Listener(Protocol):
    """Receives resilience events. Called synchronously in the thread that caused the event:
    keep it quick and never block."""

    def on_event(self, event: ResilienceEvent) -> None: ...


class EventBus:
    """A thread-safe list of listeners. Emitting copies nothing and takes no lock."""

    def __init__(self, parent: EventBus | None = None) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self._parent = parent
        self._failed: set[int] = set()

    def subscribe(self, listener: Listener) -> None:
        """Add ``listener`` (idempotent)."""
        if not callable(getattr(listener, "on_event", None)):
            from ..errors import ValidationError

            raise ValidationError(
                field="listener",
                value=listener,
                expected="an object with an on_event(event) method",
            )
        with self._lock:
            if listener not in self._listeners:
                self._listeners = (*self._listeners, listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Remove ``listener``; a no-op if it was not subscribed."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def clear(self) -> None:
        with self._lock:
            self._listeners = ()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self._listeners

    def emit(self, event: ResilienceEvent) -> None:
        """Deliver ``event`` to every listener here, then to the parent bus."""
        for listener in self._listeners:  # the tuple is replaced, never mutated: no lock needed
            try:
                listener.on_event(event)
            except Exception:  # a listener must never break the protected call
                key = id(listener)
                if key not in self._failed:
                    self._failed.add(key)
                    _log.exception("resilience event listener %r failed; ignoring", listener)
        if self._parent is not None:
            self._parent.emit(event)


#: The process-wide bus: every primitive publishes here too. Instrumentation subscribes to it.
GLOBAL_BUS = EventBus()
