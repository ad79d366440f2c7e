"""Run the simulator on its own event-loop thread, for synchronous code and tests.

::

    with start_in_thread(scenario="healthy", seed=1) as sim:
        requests.post(f"{sim.base_url}/chat/completions", json=...)
        sim.set_scenario("flaky")
        sim.script(["503", "ok"])
        sim.stats().count("/v1/chat/completions")

Every control method runs on the simulator's loop and returns its result (or raises its error).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .._loop_thread import LoopThread
from .faults import FaultSpec, OutageMode
from .server import SimulatorServer
from .state import RequestRecord, SimulatorStats

__all__ = ["SimulatorThread", "start_in_thread"]

T = TypeVar("T")


class SimulatorThread:
    """A :class:`SimulatorServer` on a private event loop in a daemon thread.

    Takes the same keyword arguments as :class:`SimulatorServer`, plus ``timeout``: the seconds
    a control call may take before ``TimeoutError``.
    """

    def __init__(self, *, timeout: float = 10.0, **options: Any) -> None:
        self._timeout = timeout
        self._runner: LoopThread | None = None
        # Built here so bad options raise at the caller's line; started on the thread's loop.
        self._server = SimulatorServer(**options)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimulatorThread:
        if self._runner is not None:
            raise RuntimeError("simulator thread already started")
        runner = LoopThread(name="pixel-llm-sim")
        try:
            runner.run(self._server.start(), timeout=self._timeout)
        except BaseException:
            runner.stop(self._timeout)
            raise
        self._runner = runner
        return self

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            runner.run(self._server.stop(), timeout=self._timeout)
        finally:
            runner.stop(self._timeout)

    def __enter__(self) -> SimulatorThread:
        return self if self._runner is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- plumbing --------------------------------------------------------------------------
    @property
    def server(self) -> SimulatorServer:
        """The underlying server (read its properties freely; call its methods via the loop)."""
        return self._server

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        runner = self._runner
        if runner is None:
            raise RuntimeError("simulator thread not started")

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return runner.run(invoke(), timeout=self._timeout)

    # --- the same API as SimulatorServer, synchronous ----------------------------------------
    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def admin_url(self) -> str:
        return self.server.admin_url

    @property
    def listening(self) -> bool:
        return self.server.listening

    @property
    def spec(self) -> FaultSpec:
        return self.server.spec

    def set_scenario(self, scenario: str | FaultSpec, *, seed: int | None = None) -> FaultSpec:
        result: FaultSpec = self._call(self.server.set_scenario, scenario, seed=seed)
        return result

    def script(self, steps: Iterable[object], *, append: bool = False) -> int:
        result: int = self._call(self.server.script, list(steps), append=append)
        return result

    def start_outage(self, duration: float, mode: OutageMode | str = OutageMode.REFUSE) -> None:
        self._call(self.server.start_outage, duration, mode)

    def end_outage(self) -> None:
        self._call(self.server.end_outage)

    def reset(self) -> None:
        self._call(self.server.reset)

    def reset_stats(self) -> None:
        self._call(self.server.reset_stats)

    def stats(self) -> SimulatorStats:
        result: SimulatorStats = self._call(self.server.stats)
        return result

    def requests(self) -> tuple[RequestRecord, ...]:
        result: tuple[RequestRecord, ...] = self._call(self.server.requests)
        return result

    def tick(self) -> None:
        self._call(self.server.tick)


def start_in_thread(**options: Any) -> SimulatorThread:
    """A started :class:`SimulatorThread` (use it as a context manager to stop it)."""
    return SimulatorThread(**options).start()
