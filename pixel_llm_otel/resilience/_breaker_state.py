"""The circuit breaker's bookkeeping: its state machine, counters and sliding window.

Everything here runs under one ``threading.Lock`` held for a few attribute updates only; events
are built under the lock (so there is exactly one per transition) and emitted after it is released.
See :mod:`pixel_llm_otel.resilience.circuit_breaker` for the behaviour.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._clock import Clock
from .events import CircuitBreakerStateChange, EventBus

if TYPE_CHECKING:
    from .circuit_breaker import CircuitBreakerConfig

__all__ = ["BreakerCore", "Window"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class Window:
    """The outcomes (failed or not) of the last ``size`` calls, in a ring buffer."""

    __slots__ = ("buf", "count", "failures", "pos", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = bytearray(size)
        self.pos = 0
        self.count = 0
        self.failures = 0

    def record(self, failed: bool) -> None:
        pos = self.pos
        if self.count == self.size:
            self.failures -= self.buf[pos]
        else:
            self.count += 1
        self.buf[pos] = failed
        self.failures += failed
        self.pos = (pos + 1) % self.size

    def clear(self) -> None:
        self.buf = bytearray(self.size)
        self.pos = self.count = self.failures = 0

    @property
    def rate(self) -> float:
        return self.failures / self.count if self.count else 0.0


class BreakerCore:
    """State, epoch and counters of one breaker. ``phase`` is ``(is_closed, epoch)``, replaced
    as a whole under the lock so the lock-free admission in CLOSED reads a consistent pair."""

    __slots__ = (
        "bus",
        "clock",
        "config",
        "consecutive",
        "epoch",
        "failures",
        "ignored",
        "in_flight",
        "lock",
        "name",
        "opened_at",
        "phase",
        "probe_successes",
        "rejections",
        "state",
        "successes",
        "window",
    )

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig,
        clock: Clock,
        window: Window | None,
        bus: EventBus,
    ) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        self.window = window
        self.bus = bus
        self.lock = threading.Lock()
        self.state = CLOSED
        self.epoch = 0
        self.phase: tuple[bool, int] = (True, 0)
        self.consecutive = 0
        self.opened_at: float | None = None
        self.in_flight = 0
        self.probe_successes = 0
        self.ignored = 0  # calls that ran and ended in an error that does not count
        self.successes = 0
        self.failures = 0
        self.rejections = 0

    # --- under the lock -------------------------------------------------------------------
    def _move(self, to: str, reason: str) -> CircuitBreakerStateChange:
        now = self.clock()
        event = CircuitBreakerStateChange(
            name=self.name, from_state=self.state, to_state=to, reason=reason, at=now
        )
        self.state = to
        self.epoch += 1
        self.phase = (to == CLOSED, self.epoch)
        self.in_flight = 0
        self.probe_successes = 0
        if to == OPEN:
            self.opened_at = now
        elif to == CLOSED:
            self.consecutive = 0
            if self.window is not None:
                self.window.clear()
        return event

    def _cooled(self) -> CircuitBreakerStateChange | None:
        if self.state == OPEN and self._retry_after() <= 0.0:
            return self._move(HALF_OPEN, "cooldown_elapsed")
        return None

    def _retry_after(self) -> float:
        if self.state != OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.config._cooldown - self.clock())

    def _rate_tripped(self) -> CircuitBreakerStateChange | None:
        window = self.window
        threshold = self.config.failure_rate_threshold
        if (
            window is not None
            and threshold is not None
            and window.count >= self.config.minimum_calls
            and window.failures / window.count >= threshold
        ):
            return self._move(OPEN, "failure_rate")
        return None

    # --- entry points (each takes the lock once, emits after releasing it) ----------------
    def admit_slow(self) -> int | tuple[str, float]:
        """The epoch admitted in, or ``(state, retry_after)`` when the call is refused."""
        event = None
        with self.lock:
            if self.state == CLOSED:
                return self.epoch
            if self.state == OPEN:
                event = self._cooled()
            if self.state == HALF_OPEN and self.in_flight < self.config.half_open_max_calls:
                self.in_flight += 1
                result: int | tuple[str, float] = self.epoch
            else:
                self.rejections += 1
                result = (self.state, self._retry_after())
        if event is not None:
            self.bus.emit(event)
        return result

    def on_success(self, epoch: int) -> None:
        # The hot path of a healthy dependency: CLOSED, same epoch. The window's ring buffer is
        # updated inline (a method call here is a fifth of the breaker's cost). A success never
        # raises the failure rate of a full window, and a window that is not yet full was below
        # the threshold at its last record, so the rate can only trip on the record that makes
        # ``count`` reach ``minimum_calls``: the check runs then and only then.
        event = None
        with self.lock:
            self.successes += 1
            if epoch == self.epoch:
                if self.state == CLOSED:
                    self.consecutive = 0
                    window = self.window
                    if window is not None:
                        pos = window.pos
                        if window.count == window.size:
                            if window.buf[pos]:
                                window.buf[pos] = 0
                                window.failures -= 1
                        else:
                            window.buf[pos] = 0
                            window.count += 1
                            if window.count == self.config.minimum_calls:
                                event = self._rate_tripped()
                        window.pos = pos + 1 if pos + 1 < window.size else 0
                elif self.state == HALF_OPEN:
                    self.in_flight -= 1
                    self.probe_successes += 1
                    if self.probe_successes >= self.config.success_threshold:
                        event = self._move(CLOSED, "probe_succeeded")
        if event is not None:
            self.bus.emit(event)

    def on_failure(self, epoch: int) -> None:
        event = None
        with self.lock:
            self.failures += 1
            if epoch == self.epoch:
                if self.state == CLOSED:
                    self.consecutive += 1
                    if self.window is not None:
                        self.window.record(True)
                    threshold = self.config.failure_threshold
                    if threshold is not None and self.consecutive >= threshold:
                        event = self._move(OPEN, "consecutive_failures")
                    else:
                        event = self._rate_tripped()
                elif self.state == HALF_OPEN:
                    event = self._move(OPEN, "probe_failed")
        if event is not None:
            self.bus.emit(event)

    def on_ignored(self, epoch: int, *, ran: bool = True) -> None:
        """The call ended in an error that does not count (or was cancelled): free its slot."""
        with self.lock:
            if ran:
                self.ignored += 1
            if epoch == self.epoch and self.state == HALF_OPEN:
                self.in_flight -= 1

    def current_state(self) -> str:
        state = self.state
        if state != OPEN:
            return state
        with self.lock:
            event = self._cooled()
            state = self.state
        if event is not None:
            self.bus.emit(event)
        return state

    def retry_after(self) -> float:
        with self.lock:
            return self._retry_after()

    def force_open(self) -> None:
        event = None
        with self.lock:
            if self.state == OPEN:
                self.opened_at = self.clock()  # restart the cooldown; not a transition
            else:
                event = self._move(OPEN, "forced_open")
        if event is not None:
            self.bus.emit(event)

    def reset(self) -> None:
        event = None
        with self.lock:
            if self.state == CLOSED:
                self.consecutive = 0
                if self.window is not None:
                    self.window.clear()
            else:
                event = self._move(CLOSED, "reset")
        if event is not None:
            self.bus.emit(event)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            event = self._cooled()
            window = self.window
            data: dict[str, Any] = {
                "state": self.state,
                "consecutive_failures": self.consecutive,
                "window_calls": window.count if window is not None else 0,
                "window_failures": window.failures if window is not None else 0,
                "failure_rate": window.rate if window is not None else 0.0,
                "calls": self.successes + self.failures + self.ignored,
                "successes": self.successes,
                "failures": self.failures,
                "rejections": self.rejections,
                "opened_at": self.opened_at,
                "retry_after": self._retry_after(),
                "half_open_in_flight": self.in_flight,
            }
        if event is not None:
            self.bus.emit(event)
        return data
