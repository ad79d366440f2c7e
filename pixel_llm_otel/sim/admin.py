"""The admin API (``/admin/...``): switch scenarios, script faults, read counters, reset.

=======================  ======================================================================
GET  /admin/health       ``{"status": "ok"}``
GET  /admin/stats        counters (see :class:`~pixel_llm_otel.sim.state.SimulatorStats`)
GET  /admin/requests     the recorded requests (``?limit=N``: the last N), with traceparents
GET  /admin/scenario     the current fault spec
POST /admin/scenario     ``{"name": "flaky", "seed": 3}`` or a full spec (``FaultSpec.from_dict``)
POST /admin/script       ``{"steps": ["503", "503", "ok"], "append": false}`` (or a bare list)
POST /admin/outage       ``{"duration": 5, "mode": "refuse" | "503"}``; DELETE ends it
POST /admin/reset        back to the starting scenario, zero counters; ``{"stats_only": true}``
=======================  ======================================================================

Errors are OpenAI-shaped bodies with status 400 naming the bad field. The admin API is served
on the API port and, when configured, on a separate admin port that stays up during an outage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import web

from ..errors import ValidationError
from .faults import FaultSpec, OutageMode
from .openai_shapes import error_body
from .scenarios import SCENARIOS
from .state import RequestRecord, SimulatorStats

__all__ = ["Controller", "add_admin_routes"]


class Controller(Protocol):
    """What the admin routes drive (implemented by ``SimulatorServer``)."""

    @property
    def spec(self) -> FaultSpec: ...
    def stats(self) -> SimulatorStats: ...
    def requests(self) -> tuple[RequestRecord, ...]: ...
    def script(self, steps: Iterable[object], *, append: bool = False) -> int: ...
    def reset_stats(self) -> None: ...
    async def set_scenario(
        self, scenario: str | FaultSpec, *, seed: int | None = None
    ) -> FaultSpec: ...
    async def start_outage(self, duration: float, mode: OutageMode | str = ...) -> None: ...
    async def end_outage(self) -> None: ...
    async def reset(self) -> None: ...


CONTROLLER_KEY = web.AppKey("sim_controller", Controller)


def _bad(exc: ValidationError) -> web.Response:
    return web.json_response(
        error_body(str(exc.message), param=exc.field, code="invalid_value"), status=400
    )


async def _body(request: web.Request, *, default: Any = None) -> Any:
    text = await request.text()
    if not text.strip():
        return {} if default is None else default
    try:
        return json.loads(text)
    except ValueError:
        raise ValidationError(field="body", value=text[:80], expected="a JSON document") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError(field="body", value=body, expected="a JSON object")
    return body


def _seed(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValidationError(field="seed", value=seed, expected="an integer")
    return seed


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROLLER_KEY].stats().to_dict())


async def _requests(request: web.Request) -> web.Response:
    records = request.app[CONTROLLER_KEY].requests()
    limit = request.query.get("limit")
    if limit is not None:
        if not limit.isdigit():
            return _bad(ValidationError(field="limit", value=limit, expected="an integer >= 0"))
        records = records[len(records) - int(limit) :] if int(limit) else ()
    return web.json_response({"requests": [r.to_dict() for r in records]})


async def _get_scenario(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROLLER_KEY].spec.to_dict())


async def _set_scenario(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER_KEY]
    try:
        body = _object(await _body(request))
        seed = _seed(body)
        named = set(body) <= {"name", "seed"}
        if named and "name" not in body:
            raise ValidationError(field="name", value=None, expected=f"one of {sorted(SCENARIOS)}")
        if named:
            target: str | FaultSpec = body["name"]
        else:
            target = FaultSpec.from_dict({k: v for k, v in body.items() if k != "seed"})
        spec = await controller.set_scenario(target, seed=seed)
    except ValidationError as exc:
        return _bad(exc)
    return web.json_response(spec.to_dict())


async def _script(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER_KEY]
    try:
        body = await _body(request)
        append = False
        if isinstance(body, dict):
            append = bool(body.get("append", False))
            body = body.get("steps")
        if not isinstance(body, list):
            raise ValidationError(field="steps", value=body, expected="a list of steps")
        queued = controller.script(body, append=append)
    except ValidationError as exc:
        return _bad(exc)
    return web.json_response({"script_remaining": queued})


async def _start_outage(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER_KEY]
    try:
        body = _object(await _body(request))
        if "duration" not in body:
            raise ValidationError(field="duration", value=None, expected="seconds >= 0")
        await controller.start_outage(body["duration"], body.get("mode", OutageMode.REFUSE))
    except ValidationError as exc:
        return _bad(exc)
    return web.json_response(controller.stats().to_dict())


async def _end_outage(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER_KEY]
    await controller.end_outage()
    return web.json_response(controller.stats().to_dict())


async def _reset(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER_KEY]
    try:
        body = _object(await _body(request))
    except ValidationError as exc:
        return _bad(exc)
    if body.get("stats_only"):
        controller.reset_stats()
    else:
        await controller.reset()
    return web.json_response(controller.stats().to_dict())


def add_admin_routes(app: web.Application, controller: Controller) -> None:
    """Install the ``/admin`` routes on ``app``."""
    app[CONTROLLER_KEY] = controller
    app.router.add_get("/admin/health", _health)
    app.router.add_get("/admin/stats", _stats)
    app.router.add_get("/admin/requests", _requests)
    app.router.add_get("/admin/scenario", _get_scenario)
    app.router.add_post("/admin/scenario", _set_scenario)
    app.router.add_post("/admin/script", _script)
    app.router.add_post("/admin/outage", _start_outage)
    app.router.add_delete("/admin/outage", _end_outage)
    app.router.add_post("/admin/reset", _reset)
