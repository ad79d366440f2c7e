"""Time for the resilience primitives: injectable clocks and sleeps, durations, a fake clock.

Every primitive takes ``clock`` (a monotonic ``() -> float`` in seconds) and, where it waits,
``sleep`` / ``async_sleep``. Production code uses :func:`time.monotonic`, :func:`time.sleep` and
:func:`asyncio.sleep`; tests pass a :class:`FakeClock`, whose sleeps advance its time instead of
waiting, so no test ever waits for real.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from .._checks import to_seconds
from ..errors import ValidationError

__all__ = ["AsyncSleep", "Clock", "FakeClock", "Sleep", "to_seconds"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]


class FakeClock:
    """A manual monotonic clock for tests: ``sleep`` and ``async_sleep`` advance it, never wait.

    Pass ``clock=fake, sleep=fake.sleep, async_sleep=fake.async_sleep`` to a primitive. Every
    sleep is recorded in :attr:`sleeps`. Thread-safe.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self._now

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValidationError(field="seconds", value=seconds, expected=">= 0")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
