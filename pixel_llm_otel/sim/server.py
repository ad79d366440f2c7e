"""Run the simulator in the current event loop: :class:`SimulatorServer`.

::

    async with SimulatorServer(port=0, scenario="healthy", seed=1) as sim:
        client = LMStudioClient(base_url=sim.base_url)      # http://127.0.0.1:PORT/v1
        sim.script(["503", "503", "ok"])                     # the next three requests
        await sim.set_scenario("flaky")                      # or a FaultSpec
        await sim.start_outage(5.0)                          # connection refused for 5 s
        assert sim.stats().count("/v1/chat/completions", "503") == 2

An outage in ``refuse`` mode closes the listening socket (and drops kept-alive connections) and
reopens it on the same port when the window ends on the simulator's clock. A watcher task
re-reads the clock every ``poll_interval`` real seconds; with a manual clock, call
:meth:`SimulatorServer.tick` after advancing it to apply the change at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from ..errors import ValidationError
from .admin import add_admin_routes
from .app import AppConfig, add_api_routes, api_middleware
from .faults import FaultSpec, OutageMode
from .scenarios import resolve
from .state import RequestRecord, SimulatorState, SimulatorStats

__all__ = ["DEFAULT_MODELS", "SimulatorServer"]

logger = logging.getLogger("pixel_llm_otel.sim")

DEFAULT_MODELS: tuple[str, ...] = ("sim-model", "sim-vision-model")


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address (or ``localhost``); ValidationError otherwise."""
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValidationError(field="host", value=host, expected="a loopback address (127.0.0.1)")


def _check_port(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ValidationError(field=name, value=value, expected="an integer in 0..65535")
    return value


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SimulatorServer:
    """An OpenAI-compatible fault simulator served from the running event loop.

    Args:
        host: a loopback address to listen on.
        port: the API port; 0 picks a free one (read it back from :attr:`port`).
        scenario: a scenario name (see :data:`~pixel_llm_otel.sim.SCENARIOS`) or a FaultSpec.
        seed: seeds the RNG that draws faults and latencies (``None``: random).
        api_key: when set, ``/v1`` requests need ``Authorization: Bearer <api_key>``.
        admin_port: also serve the admin API on this port (0: a free one), which stays up
            during a ``refuse`` outage; ``None``: admin only on the API port.
        models: the ids listed by ``GET /v1/models``.
        clock: monotonic seconds; outage windows are measured on it.
        sleep: awaited for latency, hangs and the delay between SSE chunks.
        poll_interval: real seconds between checks of the outage window.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str | FaultSpec = "healthy",
        seed: int | None = None,
        api_key: str | None = None,
        admin_port: int | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        poll_interval: float = 0.01,
    ) -> None:
        self._host = check_loopback(host)
        self._port = _check_port(port, "port")
        self._admin_port = None if admin_port is None else _check_port(admin_port, "admin_port")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ValidationError(field="api_key", value="<hidden>", expected="a non-empty string")
        if isinstance(models, str) or not models or not all(isinstance(m, str) for m in models):
            raise ValidationError(field="models", value=models, expected="a list of model ids")
        self._state = SimulatorState(resolve(scenario), seed=seed, clock=clock)
        self._config = AppConfig(api_key=api_key, models=tuple(models), sleep=sleep)
        self._poll_interval = poll_interval
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._admin_site: web.SockSite | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> SimulatorServer:
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        app = web.Application(middlewares=[api_middleware])
        add_api_routes(app, self._state, self._config)
        add_admin_routes(app, self)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await runner.setup()
        self._runner = runner
        try:
            if self._admin_port is not None:
                admin_sock = _listen(self._host, self._admin_port)
                self._admin_port = admin_sock.getsockname()[1]
                self._admin_site = web.SockSite(runner, admin_sock)
                await self._admin_site.start()
            await self._open()
            await self.tick()
        except BaseException:
            await self.stop()
            raise
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        logger.info("simulator listening on %s (scenario %s)", self.base_url, self.spec.name)
        return self

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if runner.server is not None:
            for conn in runner.server.connections:
                conn.force_close()
        await runner.cleanup()
        self._site = self._admin_site = None

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- addresses -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The API port (the bound one once started with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL clients use: ``http://HOST:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def admin_url(self) -> str:
        """Where the admin API is: the admin port if configured, else the API port."""
        if self._admin_port is None:
            return f"{self.url}/admin"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._admin_port}/admin"

    @property
    def listening(self) -> bool:
        """Whether the API port accepts connections (false during a ``refuse`` outage)."""
        return self._site is not None

    # --- control ---------------------------------------------------------------------------
    @property
    def spec(self) -> FaultSpec:
        return self._state.spec

    async def set_scenario(
        self, scenario: str | FaultSpec, *, seed: int | None = None
    ) -> FaultSpec:
        """Switch to a named scenario or a spec now (its outage window, if any, starts now)."""
        spec = resolve(scenario)
        self._state.set_spec(spec, seed=seed)
        await self.tick()
        logger.info("simulator scenario: %s", spec.name)
        return spec

    def script(self, steps: Iterable[object], *, append: bool = False) -> int:
        """Force the outcome of the next requests, in order (``["503", "503", "ok"]``)."""
        return self._state.set_script(steps, append=append)

    async def start_outage(
        self, duration: float, mode: OutageMode | str = OutageMode.REFUSE
    ) -> None:
        """Down for ``duration`` seconds of the simulator's clock, from now."""
        self._state.start_outage(duration, mode)
        await self.tick()

    async def end_outage(self) -> None:
        self._state.end_outage()
        await self.tick()

    async def reset(self) -> None:
        """Starting scenario and seed again, no script, no outage, zero counters."""
        self._state.reset()
        await self.tick()

    def reset_stats(self) -> None:
        self._state.reset_stats()

    def stats(self) -> SimulatorStats:
        return self._state.stats(listening=self.listening)

    def requests(self) -> tuple[RequestRecord, ...]:
        """Every recorded request (bounded), oldest first."""
        return self._state.requests()

    async def tick(self) -> None:
        """Re-read the clock now: close or reopen the listening socket to match the outage."""
        async with self._sync_lock:
            if self._runner is None:
                return
            refuse = self._state.outage_mode() is OutageMode.REFUSE
            if refuse and self._site is not None:
                await self._close()
            elif not refuse and self._site is None:
                try:
                    await self._open()
                except OSError as exc:  # port taken meanwhile: try again on the next tick
                    logger.warning("simulator could not reopen port %d: %s", self._port, exc)

    # --- internals -------------------------------------------------------------------------
    async def _open(self) -> None:
        if self._runner is None:
            raise RuntimeError("simulator not started")
        sock = _listen(self._host, self._port)
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._site = site
        logger.info("simulator up on port %d", self._port)

    async def _close(self) -> None:
        site, self._site = self._site, None
        if site is not None:
            await site.stop()
        server = self._runner.server if self._runner is not None else None
        for conn in server.connections if server is not None else ():
            transport = conn.transport
            if transport is None or transport.get_extra_info("sockname")[1] != self._port:
                continue
            if transport in self._config.busy:
                conn.close()  # closes once its response is written
            else:
                conn.force_close()  # idle keep-alive connection
        logger.info("simulator down on port %d (outage)", self._port)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.tick()
            except Exception:  # pragma: no cover - keep watching whatever happens
                logger.exception("simulator outage watcher failed")
