"""Helpers for testing code against the simulator without waiting real time.

``ManualClock`` is a clock you advance by hand (pass it as ``clock=``); ``RecordingSleep`` is an
async sleep that records the delays it was asked for and returns at once (pass it as ``sleep=``).
"""

from __future__ import annotations

import asyncio

__all__ = ["ManualClock", "RecordingSleep"]


class ManualClock:
    """A monotonic clock that only moves when :meth:`advance` is called."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.now += seconds
        return self.now


class RecordingSleep:
    """An async ``sleep`` that records each delay and yields to the loop once instead of waiting.

    With ``clock`` given, it also advances that clock by the delay.
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.calls: list[float] = []
        self._clock = clock

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)
        await asyncio.sleep(0)

    @property
    def total(self) -> float:
        return sum(self.calls)
