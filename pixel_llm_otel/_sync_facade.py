"""One mechanism for every blocking facade over an async object (httpx's Client/AsyncClient shape).

The async class holds the real methods; the sync class lists them, one line each::

    class HybridPixelLLM(SyncFacade):
        generate = blocking(AsyncHybridPixelLLM.generate)            # sync: runs on the loop
        generate_async = delegate(AsyncHybridPixelLLM.generate)      # async: the caller's loop
        stream = blocking_iter(AsyncHybridPixelLLM.stream)           # async iterator -> iterator

Each generated method keeps the async method's signature and docstring (``functools.wraps``; for
mypy, through ``ParamSpec``). Calls run on the facade's private
:class:`~pixel_llm_otel._loop_thread.LoopThread` (no ``asyncio.run`` per call; a caller whose
thread runs a loop, such as Jupyter, is never touched) and exceptions propagate unchanged. After
:meth:`SyncFacade._close_facade` every blocking call raises
:class:`~pixel_llm_otel.errors.ClientClosedError`; a call the close overtakes gets it too.

Used by :class:`~pixel_llm_otel.pipeline.HybridPixelLLM`,
:class:`~pixel_llm_otel.client.SyncLMStudioClient` and
:class:`~pixel_llm_otel.sim.thread.SimulatorThread`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._loop_thread import LoopThread
from .errors import ClientClosedError

__all__ = ["SyncFacade", "blocking", "blocking_iter", "delegate", "on_loop"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
A = TypeVar("A")


class SyncFacade:
    """Base of the blocking facades: a target (the async object), a private loop, a closed flag.

    Subclasses set :attr:`_target` and call ``SyncFacade.__init__``; guards (seconds a blocking
    call may take before ``TimeoutError``, ``None``: none) are attributes named by ``blocking``.
    """

    _target: Any
    _facade_name: str = "facade"

    def __init__(self, target: object, *, name: str) -> None:
        self._target = target
        self._facade_name = name
        self._runner = LoopThread(name=name)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _loop_runner(self) -> LoopThread:
        """The loop to run on; raises once the facade is closed (overridable)."""
        if self._closed:
            raise ClientClosedError(f"{self._facade_name} is closed", what=self._facade_name)
        return self._runner

    def _run(self, coro: Coroutine[Any, Any, R], timeout: float | None = None) -> R:
        try:
            runner = self._loop_runner()
        except BaseException:
            coro.close()
            raise
        return runner.run(coro, timeout=timeout)

    def _guard(self, name: str | None) -> float | None:
        return None if name is None else getattr(self, name)

    def _close_facade(self, closer: Coroutine[Any, Any, Any] | None, timeout: float) -> None:
        """Mark closed, run ``closer`` on the loop (if it ever started), stop the loop."""
        if self._closed:
            if closer is not None:
                closer.close()
            return
        self._closed = True
        runner = self._runner
        try:
            if closer is not None:
                if runner.is_running:
                    runner.run(closer, timeout=timeout)
                else:
                    closer.close()
        finally:
            runner.stop()


def blocking(
    method: Callable[Concatenate[A, P], Coroutine[Any, Any, R]], *, guard: str | None = None
) -> Callable[Concatenate[SyncFacade, P], R]:
    """A blocking method running the target's ``method`` on the facade's loop.

    ``guard``: the name of the facade attribute holding the seconds to wait (``None``: no guard).
    """

    @functools.wraps(method)
    def sync(self: SyncFacade, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self._target, *args, **kwargs), self._guard(guard))

    return sync


def on_loop(
    method: Callable[Concatenate[A, P], R], *, guard: str | None = None
) -> Callable[Concatenate[SyncFacade, P], R]:
    """A blocking method running the target's plain (sync) ``method`` on the facade's loop, so
    state owned by the loop is only ever touched from its thread."""

    @functools.wraps(method)
    def sync(self: SyncFacade, /, *args: P.args, **kwargs: P.kwargs) -> R:
        async def invoke() -> R:
            return method(self._target, *args, **kwargs)

        return self._run(invoke(), self._guard(guard))

    return sync


def blocking_iter(
    method: Callable[Concatenate[A, P], AsyncIterator[T]], *, guard: str | None = None
) -> Callable[Concatenate[SyncFacade, P], Iterator[T]]:
    """An iterator method driving the target's async iterator, one item per loop round trip.

    Closing the iterator early (``break``) closes the async one on the loop.
    """

    @functools.wraps(method)
    def sync(self: SyncFacade, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        runner = self._loop_runner()
        agen = method(self._target, *args, **kwargs)
        timeout = self._guard(guard)
        try:
            while True:
                try:
                    item = runner.run(_anext(agen), timeout=timeout)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and runner.is_running:
                runner.run(aclose(), timeout=timeout)

    return sync


def delegate(
    method: Callable[Concatenate[A, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncFacade, P], Coroutine[Any, Any, R]]:
    """An async method awaiting the target's ``method`` on the caller's own loop (the facade's
    ``*_async`` names)."""

    @functools.wraps(method)
    async def forward(self: SyncFacade, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await method(self._target, *args, **kwargs)

    return forward


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
