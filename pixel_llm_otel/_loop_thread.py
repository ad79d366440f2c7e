"""A private event loop running on its own daemon thread, for sync facades over async code.

``LoopThread`` lets synchronous code call coroutines without ``asyncio.run`` per call (which would
build and tear down a loop, and an aiohttp session, every time) and without touching the caller's
own loop: it works the same from plain scripts, worker threads and Jupyter (where the caller's
thread already runs a loop).

    runner = LoopThread(name="my-client")
    result = runner.run(client.chat(...), timeout=30)   # blocks the caller, not a loop
    runner.stop()

Exceptions raised by the coroutine propagate to the caller unchanged (same object). A guard
timeout, and a liveness check of the loop thread while waiting, keep a dead or wedged loop from
hanging the caller forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import ClientClosedError, ErrorCode, TimeoutError

__all__ = ["LoopThread"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

#: How often a waiting caller checks that the loop thread is still alive.
_LIVENESS_POLL_S = 0.5


class LoopThread:
    """One event loop on one daemon thread, started lazily, stopped by :meth:`stop`.

    Thread-safe: any number of threads may call :meth:`run` / :meth:`submit` at once; their
    coroutines run concurrently on the one loop.
    """

    def __init__(self, name: str = "pixel-llm-otel-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._exited = threading.Event()  # set once run_forever() has returned
        self._finalizer: weakref.finalize[Any, LoopThread] | None = None

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self.is_running else "idle")
        return f"LoopThread(name={self._name!r}, state={state})"

    @property
    def is_running(self) -> bool:
        """Whether the loop thread has been started and is alive."""
        thread = self._thread
        return (
            thread is not None
            and thread.is_alive()
            and not self._stopped
            and not self._exited.is_set()
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop (starting the thread on first use)."""
        return self._ensure_started()

    def in_loop_thread(self) -> bool:
        """Whether the current thread is the loop thread."""
        thread = self._thread
        return thread is not None and threading.get_ident() == thread.ident

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; returns a concurrent future."""
        try:
            loop = self._ensure_started()
        except BaseException:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result.

        Args:
            coro: the coroutine to run.
            timeout: guard in seconds; when it passes the coroutine is cancelled and a
                :class:`~pixel_llm_otel.errors.TimeoutError` (``ERR_TIMEOUT_TOTAL``) is raised.
                ``None``: no guard, but a dead loop thread is still detected.

        Raises:
            RuntimeError: when called from the loop thread itself (it would deadlock).
            ClientClosedError: after :meth:`stop`, or when the loop stops before the call
                finished (``ERR_CLIENT_CLOSED``; also a ``RuntimeError``).
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                f"{self._name}: run() called from its own loop thread; await the coroutine instead"
            )
        future = self.submit(coro)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = _LIVENESS_POLL_S
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                try:
                    return future.result(wait)
                except concurrent.futures.CancelledError:
                    if self._exited.is_set():  # cancelled by the loop's shutdown, not by us
                        raise ClientClosedError(
                            f"{self._name}: closed (the event loop stopped) before the call "
                            "finished",
                            what=self._name,
                        ) from None
                    raise
                except concurrent.futures.TimeoutError:
                    if future.done():  # the coroutine itself raised a TimeoutError
                        return future.result()
                    if not self.is_running:
                        raise ClientClosedError(
                            f"{self._name}: closed (the event loop is not running)",
                            what=self._name,
                        ) from None
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"{self._name}: no result within the {timeout:g}s guard",
                            code=ErrorCode.TIMEOUT_TOTAL,
                            context={"guard_timeout_s": timeout},
                        ) from None
        except BaseException:
            future.cancel()  # also cancels the task on the loop
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what still runs, shut the loop down and join the thread. Idempotent."""
        if self.in_loop_thread():
            raise RuntimeError(f"{self._name}: stop() called from its own loop thread")
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self._loop, self._thread
            if self._finalizer is not None:
                self._finalizer.detach()
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            _log.warning("%s: loop thread did not stop within %.1fs", self._name, timeout)

    # --- internals ----------------------------------------------------------------------
    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None and not self._stopped:
            return loop
        with self._lock:
            if self._stopped:
                raise ClientClosedError(
                    f"{self._name}: closed (the loop thread was stopped)", what=self._name
                )
            if self._loop is None:
                ready = threading.Event()
                holder: list[asyncio.AbstractEventLoop] = []
                thread = threading.Thread(
                    target=_serve, args=(holder, ready, self._exited), name=self._name, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = holder[0], thread
                self._finalizer = weakref.finalize(self, _stop_soon, holder[0])
            return self._loop


def _serve(
    holder: list[asyncio.AbstractEventLoop], ready: threading.Event, exited: threading.Event
) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    holder.append(loop)
    ready.set()
    try:
        loop.run_forever()
    finally:
        exited.set()
        try:
            _cancel_pending(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _stop_soon(loop: asyncio.AbstractEventLoop) -> None:
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(loop.stop)
