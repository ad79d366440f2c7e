"""``LMStudioClient``: an async client for OpenAI-compatible servers (LM Studio), on aiohttp.

One request = one attempt: retries, breakers and fallbacks live in :mod:`pixel_llm_otel.resilience`
and the pipeline. Failures leave this module only as :class:`~pixel_llm_otel.errors.PixelLMError`
subclasses, translated at the boundary with ``raise ... from exc``:

====================================  ============================================
what happened                         raised
====================================  ============================================
nothing listening / DNS / TLS / reset  ``ConnectionError`` (``ERR_CONNECTION_*``)
connect, read or total timeout         ``TimeoutError`` (``ERR_TIMEOUT_*``)
HTTP 4xx / 5xx                         ``APIError`` with status, body excerpt, the server's
                                       message, ``retry_after`` (code by status)
HTTP 3xx (redirects are not followed)  ``APIError`` ``ERR_RESPONSE_INVALID``, not retryable
not HTTP, or a body that is not JSON   ``APIError`` ``ERR_RESPONSE_MALFORMED``
200 JSON of the wrong shape            ``APIError`` ``ERR_RESPONSE_INVALID``
body past ``max_response_bytes``       ``APIError`` ``ERR_RESPONSE_TOO_LARGE``, not retryable
bad arguments                          ``ValidationError``
====================================  ============================================

Error contexts carry the method, URL path, server address/port and model, never the API key;
server text is scrubbed of secrets where it enters (:mod:`._inbound`). Each attempt's timeouts
are capped by what is left of the enclosing retry deadline
(:func:`~pixel_llm_otel.resilience.remaining_budget`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import aiohttp
from yarl import URL

from .. import hooks
from ..errors import ClientClosedError, PixelLMError
from ._config import ClientConfig
from ._inbound import (
    LimitedLines,
    Translate,
    attempt_timeout,
    decode,
    raise_status,
    read_body,
    scrubbing_trace_config,
)
from ._payload import build_chat_payload, encode_json
from ._secrets import Scrubber
from ._sse import collect_stream
from ._stream import ChunkReader, StreamProgress, interruption
from ._tracing import attempt_failed, start_attempt
from ._types import (
    ChatCompletion,
    StreamChunk,
    parse_chat_completion,
    parse_model_list,
    parse_stream_chunk,
)

__all__ = ["HealthStatus", "LMStudioClient"]

_log = logging.getLogger("pixel_llm_otel.client")

_CHAT = "/chat/completions"
_MODELS = "/models"
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthStatus:
    """The result of :meth:`LMStudioClient.health`."""

    available: bool
    latency_s: float
    models: tuple[str, ...] = ()
    error: PixelLMError | None = None


class LMStudioClient:
    """Async client for an OpenAI-compatible chat API (default ``http://localhost:1234/v1``).

    ``LMStudioClient(config_or_base_url=None, /, **options)``: ``options`` are
    :class:`ClientConfig` fields (``api_key=``, ``read_timeout=``, ...).

    One :class:`aiohttp.ClientSession` (one connection pool) is created lazily inside the running
    loop on first use and reused; a client belongs to that loop from then on. Use ``async with``
    or :meth:`close`.
    """

    def __init__(self, config: ClientConfig | str | None = None, /, **options: Any) -> None:
        if isinstance(config, ClientConfig) and not options:
            self._config = config
        else:
            self._config = ClientConfig.from_options(config, **options)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeout = aiohttp.ClientTimeout(
            total=cast("float | None", self._config.total_timeout),
            sock_connect=_float(self._config.connect_timeout),
            sock_read=_float(self._config.read_timeout),
        )
        self._base = self._config.base_url
        self._base_path = self._config.base_path
        # Parsed once, not per request (aiohttp takes a URL as is).
        self._chat_url = URL(self._base + _CHAT)
        self._models_url = URL(self._base + _MODELS)
        self._session_headers = {"User-Agent": self._config.user_agent}
        if self._config.api_key is not None:
            self._session_headers["Authorization"] = f"Bearer {self._config.api_key}"
        # Parsed once: every request's error context names them.
        self._server_address = self._config.server_address
        self._server_port = self._config.server_port
        self._scrub = Scrubber(self._config.api_key)
        self._max_body = self._config.max_response_bytes

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._session else "idle")
        return f"LMStudioClient(base_url={self._base!r}, state={state})"

    # --- properties ---------------------------------------------------------------------
    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def server_address(self) -> str:
        """Host of the base URL (``server.address``)."""
        return self._server_address

    @property
    def server_port(self) -> int | None:
        """Port of the base URL, or the scheme's default (``server.port``)."""
        return self._server_port

    @property
    def closed(self) -> bool:
        return self._closed

    # --- API ----------------------------------------------------------------------------
    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """``POST /chat/completions`` (non-streaming): one attempt, parsed strictly."""
        body = encode_json(
            build_chat_payload(
                messages,
                model=model,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=False,
                extra=extra,
            )
        )
        return await self._post_chat(body, model)

    async def _post_chat(self, body: bytes, model: str) -> ChatCompletion:
        """:meth:`chat` with the body already built and encoded (``._payload``'s
        ``chat_request_body`` or ``build_chat_payload(stream=False)``): the pipeline checks its
        values once per call and sends the same bytes on every attempt. ``model`` names the
        body's model in error contexts."""
        ctx = self._context("POST", _CHAT, model)
        session = self._session_for_loop()
        started = time.perf_counter()
        timeout = attempt_timeout(self._timeout)
        with Translate(ctx, self._scrub):
            resp = await self._send(session, "POST", self._chat_url, _JSON_HEADERS, timeout, body)
            async with resp:
                if resp.status >= 300:
                    await self._raise_status(resp, ctx)
                raw = await read_body(resp, self._max_body, ctx, self._scrub)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("POST %s -> 200 in %.3fs", ctx["url_path"], time.perf_counter() - started)
        return decode(raw, parse_chat_completion, ctx)

    async def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        idle_timeout: float | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[StreamChunk, None]:
        """``POST /chat/completions`` with ``stream: true``: yields each chunk as it arrives.

        ``idle_timeout``: seconds allowed without any new bytes (``sock_read``; ``None``:
        ``read_timeout``);
        ``timeout``: seconds for the whole stream from this call, connect included (``None``:
        ``total_timeout``). Usage arrives in a final chunk without choices when the server honours
        ``stream_options.include_usage`` (llama.cpp does not: then no chunk has usage).

        Endings (see :mod:`._stream`): ``[DONE]`` completes it; before any content chunk the
        failures are the ordinary retryable errors (an empty event stream is
        ``ERR_RESPONSE_INVALID``, an end before ``[DONE]`` ``ERR_CONNECTION_RESET``); after one,
        :class:`~pixel_llm_otel.errors.StreamInterrupted` (``ERR_STREAM_INTERRUPTED``). The
        connection is released however the stream ends, ``aclose()`` included.
        """
        body = encode_json(
            build_chat_payload(
                messages,
                model=model,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                extra=extra,
            )
        )
        ctx = self._context("POST", _CHAT, model, stream=True)
        session = self._session_for_loop()
        cfg = self._config
        idle = _float(cfg.read_timeout) if idle_timeout is None else idle_timeout
        budget = cast("float | None", cfg.total_timeout) if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = None if budget is None else loop.time() + budget
        # capped by what is left of an enclosing retry deadline (raises when nothing is)
        request_timeout = attempt_timeout(
            aiohttp.ClientTimeout(
                total=budget, sock_connect=_float(cfg.connect_timeout), sock_read=idle
            )
        )
        if request_timeout.total is not None and (budget is None or request_timeout.total < budget):
            deadline = loop.time() + request_timeout.total
        progress = StreamProgress()
        try:
            with Translate(ctx, self._scrub):
                resp = await self._send(
                    session, "POST", self._chat_url, _SSE_HEADERS, request_timeout, body
                )
                async with resp:
                    if resp.status >= 300:
                        await self._raise_status(resp, ctx)
                    chunks = ChunkReader(
                        LimitedLines(resp, self._max_body, ctx, self._scrub),
                        lambda raw: decode(raw, parse_stream_chunk, ctx),
                        ctx,
                        progress,
                        idle_timeout=idle,
                        deadline=deadline,
                    )
                    async for chunk in chunks:
                        yield chunk
        except PixelLMError as exc:
            ended = interruption(exc, progress, ctx)
            if ended is exc:
                raise
            raise ended from exc

    async def chat_via_stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Stream a completion and collect it into one :class:`ChatCompletion`."""
        stream = self.stream_chat(
            messages, model=model, max_tokens=max_tokens, temperature=temperature, extra=extra
        )
        return await collect_stream(stream)

    async def list_models(self) -> list[str]:
        """``GET /models``: the ids of the models the server offers."""
        return await self._list_models(self._timeout)

    async def health(self) -> HealthStatus:
        """Ask ``GET /models`` within ``health_timeout``; never raises for server trouble."""
        started = time.perf_counter()
        budget = _float(self._config.health_timeout)
        timeout = aiohttp.ClientTimeout(
            total=budget, sock_connect=min(budget, _float(self._config.connect_timeout))
        )
        try:
            models = await self._list_models(timeout)
        except PixelLMError as exc:
            return HealthStatus(available=False, latency_s=time.perf_counter() - started, error=exc)
        return HealthStatus(
            available=True, latency_s=time.perf_counter() - started, models=tuple(models)
        )

    async def check_available(self) -> bool:
        """Whether the server answers ``GET /models`` within ``health_timeout``."""
        return (await self.health()).available

    async def close(self) -> None:
        """Close the session and its pool. Idempotent; the client cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        loop = self._loop
        if loop is not None and loop.is_closed():
            session.detach()  # its loop is gone: nothing left to close gracefully
            return
        await session.close()

    def abandon(self) -> None:
        """Close for good without awaiting, when the session's event loop is already closed.

        Its connections cannot be closed gracefully any more; the session is detached so no
        "unclosed session" warning follows. Prefer :meth:`close` while the loop runs.
        """
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            session.detach()

    async def __aenter__(self) -> LMStudioClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals ----------------------------------------------------------------------
    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("LMStudioClient is closed", what="LMStudioClient")
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and not session.closed:
            if self._loop is loop:
                return session
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError(
                    "LMStudioClient is bound to another running event loop; use one client per "
                    "loop (SyncLMStudioClient owns a private one)"
                )
            session.detach()
        cfg = self._config
        connector = aiohttp.TCPConnector(
            limit=cfg.pool_limit,
            limit_per_host=cfg.pool_limit_per_host,
            keepalive_timeout=_float(cfg.keepalive_timeout),
        )
        options: dict[str, Any] = {
            "connector": connector,
            "timeout": self._timeout,
            "headers": self._session_headers,
            "trust_env": cfg.trust_env,
            "raise_for_status": False,
        }
        # No trace config of ours: the client reports its attempts itself (._tracing), and a
        # session without any runs no trace hooks per request.
        session = aiohttp.ClientSession(**options)
        if session.trace_configs:
            # Something that wraps ``ClientSession.__init__`` (a host's aiohttp instrumentation)
            # added trace configs: ours goes first so they only ever see a failed request's
            # exception scrubbed of secrets (aiohttp's parser errors quote raw lines).
            session.detach()  # nothing sent yet; the connector is handed to the new session
            session = aiohttp.ClientSession(
                **options, trace_configs=[scrubbing_trace_config(self._scrub)]
            )
        self._session = session
        self._loop = loop
        return session

    async def _list_models(self, timeout: aiohttp.ClientTimeout) -> list[str]:
        ctx = self._context("GET", _MODELS, None)
        session = self._session_for_loop()
        timeout = attempt_timeout(timeout)
        with Translate(ctx, self._scrub):
            resp = await self._send(session, "GET", self._models_url, _JSON_HEADERS, timeout)
            async with resp:
                if resp.status >= 300:
                    await self._raise_status(resp, ctx)
                raw = await read_body(resp, self._max_body, ctx, self._scrub)
        return decode(raw, parse_model_list, ctx)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        body: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        """One HTTP attempt (redirects not followed), reported to the hooks HTTP observer when
        one is installed: from just before the request to its response headers, or to its
        failure (the error scrubbed first)."""
        scope = None
        observer = hooks._http_observer
        if observer is not None:
            headers, scope = start_attempt(observer, method, url, self._session_headers, headers)
        try:
            resp = await session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        except BaseException as exc:
            if scope is not None:
                attempt_failed(scope, exc, self._scrub)
            raise
        if scope is not None:
            scope.response(resp.status)
        return resp

    def _context(
        self, method: str, endpoint: str, model: str | None, *, stream: bool = False
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "method": method,
            "url_path": self._base_path + endpoint,
            "server_address": self._server_address,
            "server_port": self._server_port,
        }
        if model is not None:
            ctx["model"] = model
        if stream:
            ctx["stream"] = True
        return ctx

    async def _raise_status(self, resp: aiohttp.ClientResponse, ctx: dict[str, Any]) -> None:
        """Raise the ``APIError`` of a non-2xx response (status >= 300)."""
        _log.debug("%s %s -> %d", ctx["method"], ctx["url_path"], resp.status)
        await raise_status(resp, ctx, self._config.max_error_body_bytes, self._scrub)


def _float(value: object) -> float:
    return cast(float, value)  # ClientConfig stores every duration as float seconds
