"""Run the simulator on its own event-loop thread, for synchronous code and tests.

::

    with start_in_thread(scenario="healthy", seed=1) as sim:
        requests.post(f"{sim.base_url}/chat/completions", json=...)
        sim.set_scenario("flaky")
        sim.script(["503", "ok"])
        sim.stats().count("/v1/chat/completions")

Every control method runs on the simulator's loop and returns its result (or raises its error):
the blocking facade of :class:`SimulatorServer`, built with the package's one sync-facade
mechanism (:mod:`pixel_llm_otel._sync_facade`).
"""

from __future__ import annotations

from typing import Any

from .._loop_thread import LoopThread
from .._sync_facade import SyncFacade, blocking, on_loop
from .faults import FaultSpec
from .server import SimulatorServer

__all__ = ["SimulatorThread", "start_in_thread"]

_NAME = "pixel-llm-sim"


class SimulatorThread(SyncFacade):
    """A :class:`SimulatorServer` on a private event loop in a daemon thread.

    Takes the same keyword arguments as :class:`SimulatorServer`, plus ``timeout``: the seconds
    a control call may take before ``TimeoutError``.
    """

    _target: SimulatorServer

    def __init__(self, *, timeout: float = 10.0, **options: Any) -> None:
        self._timeout = timeout
        # Built here so bad options raise at the caller's line; started on the thread's loop.
        super().__init__(SimulatorServer(**options), name=_NAME)
        self._started = False

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimulatorThread:
        if self._started:
            raise RuntimeError("simulator thread already started")
        if self._closed:  # stopped before: a fresh loop thread
            self._runner, self._closed = LoopThread(name=_NAME), False
        try:
            self._runner.run(self._target.start(), timeout=self._timeout)
        except BaseException:
            self._closed = True
            self._runner.stop(self._timeout)
            raise
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._close_facade(self._target.stop(), self._timeout)

    def __enter__(self) -> SimulatorThread:
        return self if self._started else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop_runner(self) -> LoopThread:
        if not self._started:
            raise RuntimeError("simulator thread not started")
        return self._runner

    # --- plumbing --------------------------------------------------------------------------
    @property
    def server(self) -> SimulatorServer:
        """The underlying server (read its properties freely; call its methods via the loop)."""
        return self._target

    # --- the same API as SimulatorServer, synchronous ----------------------------------------
    @property
    def host(self) -> str:
        return self._target.host

    @property
    def port(self) -> int:
        return self._target.port

    @property
    def url(self) -> str:
        return self._target.url

    @property
    def base_url(self) -> str:
        return self._target.base_url

    @property
    def admin_url(self) -> str:
        return self._target.admin_url

    @property
    def listening(self) -> bool:
        return self._target.listening

    @property
    def spec(self) -> FaultSpec:
        return self._target.spec

    set_scenario = blocking(SimulatorServer.set_scenario, guard="_timeout")
    script = on_loop(SimulatorServer.script, guard="_timeout")
    start_outage = blocking(SimulatorServer.start_outage, guard="_timeout")
    end_outage = blocking(SimulatorServer.end_outage, guard="_timeout")
    reset = blocking(SimulatorServer.reset, guard="_timeout")
    reset_stats = on_loop(SimulatorServer.reset_stats, guard="_timeout")
    stats = on_loop(SimulatorServer.stats, guard="_timeout")
    requests = on_loop(SimulatorServer.requests, guard="_timeout")
    tick = blocking(SimulatorServer.tick, guard="_timeout")


def start_in_thread(**options: Any) -> SimulatorThread:
    """A started :class:`SimulatorThread` (use it as a context manager to stop it)."""
    return SimulatorThread(**options).start()
