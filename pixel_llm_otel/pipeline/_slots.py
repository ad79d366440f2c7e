"""Request slots: at most ``max_concurrency`` chat requests in flight per event loop.

What an :class:`asyncio.Semaphore` does (first come, first served; a slot granted to a call that
is cancelled at that moment passes on to the next), plus waits bounded by each call's deadline
at the cost of one heap entry per waiting call: one loop timer serves every waiter, armed for
the earliest deadline among them. (``asyncio.wait_for`` starts a task per waiting call,
``asyncio.timeout`` arms and cancels a timer per waiting call: tens of microseconds each, paid
by every call queued past ``max_concurrency``.)

Taking a free slot when nobody waits is a plain method call, no coroutine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import deque

__all__ = ["Slots"]

#: The deadline heap is compacted (entries of calls no longer waiting dropped) once it holds
#: more than this many entries and more than twice as many as there are waiters.
_COMPACT_AT = 64


class Slots:
    """``slots`` request slots of one event loop (not thread-safe: one loop's tasks only)."""

    __slots__ = ("_deadlines", "_free", "_order", "_timer", "_timer_at", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._deadlines: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def try_acquire(self) -> bool:
        """Take a free slot if one is free and nobody waits for one (no await)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self, within: float | None = None) -> None:
        """Take a slot, waiting in line for one if needed.

        ``within``: seconds to wait at most (``None``: no bound); the builtin ``TimeoutError``
        when no slot came in time (at once for ``within <= 0`` when none is free).
        """
        waiters = self._waiters
        while waiters and waiters[0].done():  # timed out or cancelled: no longer in line
            waiters.popleft()
        if self._free > 0 and not waiters:
            self._free -= 1
            return
        if within is not None and within <= 0:
            raise TimeoutError
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[None] = loop.create_future()
        waiters.append(waiting)
        if within is not None:
            when = loop.time() + within
            heap = self._deadlines
            heapq.heappush(heap, (when, next(self._order), waiting))
            if len(heap) > _COMPACT_AT and len(heap) > 2 * len(waiters):
                heap[:] = [entry for entry in heap if not entry[2].done()]
                heapq.heapify(heap)
            if when < self._timer_at:
                self._arm(loop)
        try:
            await waiting
        except asyncio.CancelledError:
            if not waiting.cancelled() and waiting.done() and waiting.exception() is None:
                self.release()  # granted just as the call was cancelled: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the first call still waiting, else to the free ones."""
        waiters = self._waiters
        while waiters:
            waiting = waiters.popleft()
            if not waiting.done():
                waiting.set_result(None)
                return
        self._free += 1

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)arm the one timer for the earliest deadline of a call still waiting."""
        heap = self._deadlines
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        if heap:
            self._timer_at = heap[0][0]
            self._timer = loop.call_at(self._timer_at, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        heap = self._deadlines
        now = loop.time()
        while heap and (heap[0][2].done() or heap[0][0] <= now):
            waiting = heapq.heappop(heap)[2]
            if not waiting.done():
                waiting.set_exception(TimeoutError())
        self._arm(loop)
