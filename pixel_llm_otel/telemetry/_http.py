"""HTTP attempt spans: opentelemetry-instrumentation-aiohttp-client, with our hooks.

Each attempt of a chat request is one ``POST`` CLIENT span under ``chat {model}``; the
instrumentation injects ``traceparent`` into the request. Our hooks add
``http.request.resend_count`` to attempts after the first (read from the running retry policy)
and make sure no credential reaches a span: ``Authorization``-like headers captured through
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` are overwritten with
``[REDACTED]``, and the recorded URL loses its query string and user info.

If the host instrumented aiohttp itself, it is left as the host configured it (no resend count
unless the host passes :func:`request_hook`), and never uninstrumented by us.

The hooks run on every attempt, so the instrumentation gets the lean ones when it can: no header is
recorded unless ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_*`` names some (read once, when
instrumenting, as the instrumentation itself does), and then there is nothing to redact, so the
request hook only sets the resend count and there is no response hook. The instrumentation's HTTP
duration histogram is off by default (``http_metrics=True`` turns it on): it is not part of the
telemetry contract, and ``gen_ai.client.operation.duration`` already times the chat operation.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from . import _names as n
from ._safety import safe

__all__ = [
    "REDACTED",
    "instrument_aiohttp",
    "request_hook",
    "response_hook",
    "uninstrument_aiohttp",
]

REDACTED = "[REDACTED]"
#: Header names (normalised: lower case, ``-`` -> ``_``) whose values are never recorded.
_SENSITIVE = re.compile(
    r"^(authorization|proxy_authorization|x_api_key|api_key|apikey|cookie|set_cookie|"
    r"x_auth_token|.*secret.*|.*token.*|.*password.*)$"
)
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")


def _one() -> int:
    return 1


_attempt_source: Callable[[], int] | None = None


def _current_attempt() -> int:
    global _attempt_source
    source = _attempt_source
    if source is None:  # resolved once: the module, not the ``retry`` decorator of that name
        try:
            module = importlib.import_module("pixel_llm_otel.resilience.retry")
        except ImportError:
            module = None
        current = getattr(module, "current_attempt", None)
        source = _attempt_source = current if callable(current) else _one
    return int(source())


def _redact(span: Span) -> None:
    attributes = getattr(span, "attributes", None)
    if not attributes:
        return
    for key in list(attributes):
        if key.startswith(_HEADER_PREFIXES):
            header = key.split(".", 3)[3]
            if _SENSITIVE.match(header):
                span.set_attribute(key, [REDACTED])


@safe("http.request_hook", None)
def request_hook(span: Span, params: Any) -> None:
    """aiohttp-client ``request_hook``: resend count on retried attempts; redact credentials."""
    if span is None or not span.is_recording():
        return
    attempt = _current_attempt()
    if attempt > 1:
        span.set_attribute(n.HTTP_REQUEST_RESEND_COUNT, attempt - 1)
    _redact(span)


@safe("http.request_hook", None)
def _resend_hook(span: Span, params: Any) -> None:
    """The request hook when no header is captured: only the resend count (nothing to redact)."""
    attempt = _current_attempt()
    if attempt > 1 and span is not None and span.is_recording():
        span.set_attribute(n.HTTP_REQUEST_RESEND_COUNT, attempt - 1)


@safe("http.response_hook", None)
def response_hook(span: Span, params: Any) -> None:
    """aiohttp-client ``response_hook``: redact credentials (response headers included)."""
    if span is not None and span.is_recording():
        _redact(span)


def url_filter(url: Any) -> str:
    """The URL as recorded on spans: no query string, no user info."""
    try:
        if url.raw_query_string or url.raw_user or url.raw_fragment:
            url = url.with_query(None).with_user(None).with_fragment(None)
        return str(url)
    except Exception:  # not a yarl.URL: record nothing rather than something secret
        return ""


_instrumented_by_us = False


def _captures_headers() -> bool:
    """Whether the aiohttp instrumentation will record any header (read as it reads them)."""
    try:
        from opentelemetry.util.http import (
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST as REQUEST,
        )
        from opentelemetry.util.http import (
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE as RESPONSE,
        )
        from opentelemetry.util.http import get_custom_headers
    except ImportError:  # cannot tell: keep the redacting hooks
        return True
    return bool(get_custom_headers(REQUEST) or get_custom_headers(RESPONSE))


def instrument_aiohttp(
    tracer_provider: Any = None, meter_provider: Any = None, *, http_metrics: bool = False
) -> bool:
    """Instrument aiohttp client sessions with our hooks unless already instrumented.

    ``http_metrics``: keep the instrumentation's HTTP duration histogram (off: it gets a no-op
    meter provider). Returns whether this call instrumented it.
    """
    global _instrumented_by_us
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    except ImportError:  # the otel extra is partially installed: no HTTP spans, nothing else lost
        return False
    instrumentor = AioHttpClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return False
    hooks: dict[str, Callable[..., Any]] = {"url_filter": url_filter}
    if _captures_headers():
        hooks.update(request_hook=request_hook, response_hook=response_hook)
    else:
        hooks.update(request_hook=_resend_hook)
    if not http_metrics:
        from opentelemetry.metrics import NoOpMeterProvider

        meter_provider = NoOpMeterProvider()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **hooks)
    _instrumented_by_us = bool(instrumentor.is_instrumented_by_opentelemetry)
    return _instrumented_by_us


def uninstrument_aiohttp() -> None:
    """Undo :func:`instrument_aiohttp` (only what we did: never the host's instrumentation)."""
    global _instrumented_by_us
    if not _instrumented_by_us:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().uninstrument()
    _instrumented_by_us = False
