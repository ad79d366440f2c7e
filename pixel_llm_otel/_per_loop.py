"""``PerLoop``: one resource per running event loop, closed when that loop ends.

aiohttp sessions and asyncio primitives belong to the loop that created them, so a component used
from several loops (a private loop thread for sync calls, the caller's own loop for async calls,
``asyncio.run`` once per call in scripts and notebooks) needs one resource per loop. Two promises:

- **Nothing outlives its loop.** Each resource is paired with a small async generator registered
  with its loop; ``asyncio.run`` (and any loop shut down with ``loop.shutdown_asyncgens()``, as
  :class:`~pixel_llm_otel._loop_thread.LoopThread` does) closes that generator, which closes the
  resource and forgets it while the loop can still run the close. A loop closed without that
  step is forgotten the next time the map is used, and its resource dropped.
- **The map never keeps a loop alive.** Entries are removed as above, so a finished loop (whose
  resource references it) is not pinned by the map.

:meth:`PerLoop.aclose` closes the running loop's resource and, through
``run_coroutine_threadsafe``, those of loops running on other threads; a loop that is idle (not
running, not closed) closes its own when it shuts down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")

#: How long a close waits for another thread's loop to close its resource.
_FOREIGN_CLOSE_S = 5.0


class _Entry(Generic[T]):
    __slots__ = ("value", "watcher")

    def __init__(self, value: T) -> None:
        self.value = value
        self.watcher: AsyncGenerator[None, None] | None = None


class PerLoop(Generic[T]):
    """``get()`` returns the running loop's resource, made by ``factory`` on first use."""

    def __init__(
        self,
        factory: Callable[[], T],
        close: Callable[[T], Awaitable[None]],
        discard: Callable[[T], None] = lambda value: None,
    ) -> None:
        """``close`` releases a resource on its loop; ``discard`` forgets one whose loop is gone."""
        self._factory = factory
        self._close = close
        self._discard = discard
        self._entries: dict[asyncio.AbstractEventLoop, _Entry[T]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Resources currently held (loops that have one and are not known to be finished)."""
        self._prune()
        return len(self._entries)

    def get(self) -> T:
        """The running loop's resource (call from inside a running loop)."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is not None:
            return entry.value
        self._prune()
        entry = _Entry(self._factory())
        with self._lock:
            self._entries[loop] = entry
        entry.watcher = self._watch(loop)
        _start(entry.watcher)
        return entry.value

    async def aclose(self, *, skip: asyncio.AbstractEventLoop | None = None) -> None:
        """Close every resource whose loop can still run a close; forget the rest.

        ``skip``: a loop not to wait for (its thread is blocked on this call).
        """
        current = asyncio.get_running_loop()
        waits: list[concurrent.futures.Future[None]] = []
        for loop in self._loops():
            if loop is skip:
                continue
            if loop is current:
                await self._close_for(loop)
            elif loop.is_running():
                waits.append(asyncio.run_coroutine_threadsafe(self._close_for(loop), loop))
        for future in waits:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(future), _FOREIGN_CLOSE_S)
        self._prune()

    def close_threadsafe(self, *, skip: asyncio.AbstractEventLoop | None = None) -> None:
        """Close the resources of loops running on other threads (``skip``: the caller's)."""
        for loop in self._loops():
            if loop is not skip and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._close_for(loop), loop)
                with contextlib.suppress(Exception):
                    future.result(_FOREIGN_CLOSE_S)
        self._prune()

    # --- internals ----------------------------------------------------------------------
    def _loops(self) -> list[asyncio.AbstractEventLoop]:
        with self._lock:
            return list(self._entries)

    async def _close_for(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            entry = self._entries.pop(loop, None)
        if entry is None:
            return
        watcher, entry.watcher = entry.watcher, None
        try:
            await self._close(entry.value)
        finally:
            if watcher is not None:
                await watcher.aclose()  # its finally finds nothing left to close

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        """Suspended until the loop shuts its async generators down, then closes the resource."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._entries.pop(loop, None)
            if entry is not None:
                entry.watcher = None
                await self._close(entry.value)

    def _prune(self) -> None:
        """Forget the resources of loops that closed without shutting their generators down."""
        with self._lock:
            gone = [self._entries.pop(loop) for loop in list(self._entries) if loop.is_closed()]
        for entry in gone:
            watcher, entry.watcher = entry.watcher, None
            if watcher is not None:
                _finish(watcher)
            self._discard(entry.value)


def _start(agen: AsyncGenerator[None, None]) -> None:
    """Run ``agen`` to its first ``yield`` now, which registers it with the running loop."""
    step = agen.__anext__()
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("PerLoop watcher did not suspend at its first yield")  # pragma: no cover


def _finish(agen: AsyncGenerator[None, None]) -> None:
    """Close ``agen`` without a loop (its loop is closed): its ``finally`` awaits nothing then."""
    step = agen.aclose()
    with contextlib.suppress(StopIteration, RuntimeError):
        step.send(None)
