"""The OpenAI-compatible routes (``/v1/models``, ``/v1/chat/completions``) and their faults.

Order of checks for every ``/v1`` request: outage window -> API key -> route (404/405) ->
body validation (400) -> the fault decision (script, then rates) -> latency -> the answer.
Each request is counted once with its outcome; only the ``traceparent`` header is recorded,
never ``Authorization``.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import openai_shapes as shapes
from ._stream import stream_answer
from .faults import STREAM_KINDS, FaultKind, FaultSpec, OutageMode
from .state import (
    OUTCOME_INVALID,
    OUTCOME_NOT_FOUND,
    OUTCOME_OUTAGE,
    OUTCOME_UNAUTHORIZED,
    SimulatorState,
)

__all__ = ["CHAT_PATH", "MODELS_PATH", "AppConfig", "add_api_routes", "api_middleware"]

logger = logging.getLogger("pixel_llm_otel.sim")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
_KNOWN_PATHS = (CHAT_PATH, MODELS_PATH)

SleepFn = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Fixed settings of one simulator app."""

    api_key: str | None
    models: tuple[str, ...]
    sleep: SleepFn
    reset_after_bytes: int = 40  # bytes of body sent before a "reset" drops the connection
    #: transports with a request being handled (an outage closes idle ones at once, these after)
    busy: set[object] = field(default_factory=set)


STATE_KEY = web.AppKey("sim_state", SimulatorState)
CONFIG_KEY = web.AppKey("sim_config", AppConfig)

_SERVER_ERRORS: dict[FaultKind, tuple[int, str]] = {
    FaultKind.HTTP_500: (500, "The server had an error while processing your request."),
    FaultKind.HTTP_502: (502, "Bad gateway."),
    FaultKind.HTTP_503: (503, "The engine is currently overloaded, please try again later."),
    FaultKind.HTTP_504: (504, "Gateway timeout."),
}


#: Kinds answered the same way whether or not the request asked for a stream.
_NOT_STREAMED = frozenset({*_SERVER_ERRORS, FaultKind.RATE_LIMIT, FaultKind.HANG})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _retry_after(seconds: float) -> str:
    return f"{seconds:g}"


def _drop(request: web.BaseRequest) -> None:
    """Close the connection without (finishing) a response; buffered bytes are flushed first."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _record(
    request: web.Request, outcome: str, *, model: str | None = None, stream: bool = False
) -> None:
    path = request.path
    endpoint = path if path in _KNOWN_PATHS else "other"
    request.app[STATE_KEY].record(
        method=request.method,
        path=path,
        endpoint=endpoint,
        outcome=outcome,
        traceparent=request.headers.get("traceparent"),
        model=model,
        stream=stream,
    )
    logger.debug("%s %s -> %s", request.method, path, outcome)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outage, API key and OpenAI-shaped 404/405 for everything outside ``/admin``."""
    busy = request.app[CONFIG_KEY].busy
    transport = request.transport
    busy.add(transport)
    try:
        if request.path.startswith("/admin"):
            return await handler(request)
        return await _api(request, handler)
    finally:
        busy.discard(transport)


async def _api(request: web.Request, handler: Handler) -> web.StreamResponse:
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    mode = state.outage_mode()
    if mode is not None:
        _record(request, OUTCOME_OUTAGE)
        if mode is OutageMode.REFUSE:  # a kept-alive connection got through: drop it
            _drop(request)
            return web.Response(status=503)
        remaining = math.ceil(state.outage_remaining())
        return _json(
            503,
            shapes.error_body(
                "The server is temporarily unavailable.",
                type_="server_error",
                code="service_unavailable",
            ),
            {"Retry-After": str(max(1, remaining))},
        )
    if config.api_key is not None and not _authorized(request, config.api_key):
        _record(request, OUTCOME_UNAUTHORIZED)
        return _json(
            401,
            shapes.error_body(
                "Incorrect API key provided.",
                code="invalid_api_key",
            ),
        )
    try:
        return await handler(request)
    except web.HTTPNotFound:
        _record(request, OUTCOME_NOT_FOUND)
        return _json(404, shapes.error_body(f"Invalid URL ({request.method} {request.path})"))
    except web.HTTPMethodNotAllowed:
        _record(request, OUTCOME_NOT_FOUND)
        return _json(
            405, shapes.error_body(f"Method not allowed ({request.method} {request.path})")
        )


def _authorized(request: web.Request, api_key: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), api_key.encode())


async def _models(request: web.Request) -> web.Response:
    _record(request, FaultKind.OK.value)
    return _json(200, shapes.models_list(request.app[CONFIG_KEY].models))


async def _chat(request: web.Request) -> web.StreamResponse:
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    try:
        body = json.loads(await request.text())
        chat = shapes.parse_chat_request(body)
    except (ValueError, UnicodeDecodeError):
        _record(request, OUTCOME_INVALID)
        return _json(
            400,
            shapes.error_body(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)"
            ),
        )
    except shapes.RequestInvalid as exc:
        _record(request, OUTCOME_INVALID)
        return _json(400, shapes.error_body(exc.message, param=exc.param, code=exc.code))
    spec = state.spec
    decision = state.decide()
    kind = decision.kind
    if kind in STREAM_KINDS and not chat.stream:
        kind = FaultKind.OK  # stream faults leave a non-streamed answer alone
    _record(request, kind.value, model=chat.model, stream=chat.stream)
    if decision.latency > 0:
        await config.sleep(decision.latency)
    if chat.stream and kind not in _NOT_STREAMED:
        return await stream_answer(request, chat, decision, spec, config.sleep, _drop)
    return await _answer(request, chat, kind, spec, config)


async def _answer(
    request: web.Request,
    chat: shapes.ChatRequest,
    kind: FaultKind,
    spec: FaultSpec,
    config: AppConfig,
) -> web.StreamResponse:
    if kind in _SERVER_ERRORS:
        status, message = _SERVER_ERRORS[kind]
        return _json(status, shapes.error_body(message, type_="server_error"))
    if kind is FaultKind.RATE_LIMIT:
        return _json(
            429,
            shapes.error_body(
                f"Rate limit reached for requests. Please try again in {spec.retry_after:g}s.",
                type_="requests",
                code="rate_limit_exceeded",
            ),
            {"Retry-After": _retry_after(spec.retry_after)},
        )
    if kind is FaultKind.HANG:
        await config.sleep(spec.hang_seconds)
        _drop(request)
        return web.Response(status=504)
    if kind is FaultKind.MALFORMED_JSON:
        text = json.dumps(shapes.completion(chat))
        return web.Response(
            status=200, text=text[: len(text) // 2], content_type="application/json"
        )
    payload = json.dumps(shapes.completion(chat, empty_choices=kind is FaultKind.EMPTY_CHOICES))
    if kind is FaultKind.RESET:
        data = payload.encode()
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: min(config.reset_after_bytes, len(data) // 2)])
        _drop(request)
        return response
    return web.Response(status=200, text=payload, content_type="application/json")


def add_api_routes(app: web.Application, state: SimulatorState, config: AppConfig) -> None:
    """Install the ``/v1`` routes, the state and the config on ``app``."""
    app[STATE_KEY] = state
    app[CONFIG_KEY] = config
    app.router.add_get(MODELS_PATH, _models)
    app.router.add_post(CHAT_PATH, _chat)
