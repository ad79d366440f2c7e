"""The client's HTTP attempts, reported to the :mod:`~pixel_llm_otel.hooks` HTTP observer.

Every session the client creates carries this one ``aiohttp.TraceConfig``, first in its list. When
no observer is installed each callback is one global read. The telemetry layer's observer turns
each attempt into the ``POST`` span of the telemetry contract and keeps any HTTP instrumentation
the host enabled on aiohttp from adding a second span for the same request.
"""

from __future__ import annotations

import types
from typing import Any

import aiohttp

from .. import hooks

__all__ = ["trace_config"]


async def _start(
    _session: aiohttp.ClientSession,
    ctx: types.SimpleNamespace,
    params: aiohttp.TraceRequestStartParams,
) -> None:
    observer = hooks._http_observer
    ctx.pixel_scope = (
        None
        if observer is None
        else observer.http_request(params.method, params.url, params.headers)
    )


async def _end(
    _session: aiohttp.ClientSession,
    ctx: types.SimpleNamespace,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    scope: Any = getattr(ctx, "pixel_scope", None)
    if scope is not None:
        ctx.pixel_scope = None
        scope.response(params.response.status)


async def _exception(
    _session: aiohttp.ClientSession,
    ctx: types.SimpleNamespace,
    params: aiohttp.TraceRequestExceptionParams,
) -> None:
    scope: Any = getattr(ctx, "pixel_scope", None)
    if scope is not None:
        ctx.pixel_scope = None
        scope.fail(params.exception)


def trace_config() -> aiohttp.TraceConfig:
    """A fresh trace config for one session (aiohttp freezes a config once a session uses it)."""
    config: aiohttp.TraceConfig = aiohttp.TraceConfig()
    config.on_request_start.append(_start)
    config.on_request_end.append(_end)
    config.on_request_exception.append(_exception)
    return config
