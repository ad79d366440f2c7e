"""Helpers shared by the resilience tests (imported by module name; the basename is unique)."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from pixel_llm_otel.resilience import FakeClock, ResilienceEvent

E = TypeVar("E")


class Recorder:
    """Collects every event it receives (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[ResilienceEvent] = []
        self._lock = threading.Lock()

    def on_event(self, event: ResilienceEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


def fake_timing(clock: FakeClock) -> dict[str, Any]:
    """Policy keywords that make a RetryPolicy use ``clock`` for time and sleeping."""
    return {"clock": clock, "sleep": clock.sleep, "async_sleep": clock.async_sleep}
