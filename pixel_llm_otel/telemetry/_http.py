"""HTTP attempt spans: opentelemetry-instrumentation-aiohttp-client, with our hooks.

Each attempt of a chat request is one ``POST`` CLIENT span under ``chat {model}``; the
instrumentation injects ``traceparent`` into the request. Our hooks add
``http.request.resend_count`` to attempts after the first (read from the running retry policy)
and make sure no credential reaches a span: ``Authorization``-like headers captured through
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` are overwritten with
``[REDACTED]``, and the recorded URL loses its query string and user info.

If the host instrumented aiohttp itself, it is left as the host configured it (no resend count
unless the host passes :func:`request_hook`), and never uninstrumented by us.
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


def _current_attempt() -> int:
    try:  # the module, not the package's ``retry`` decorator of the same name
        module = importlib.import_module("pixel_llm_otel.resilience.retry")
    except ImportError:
        return 1
    current = getattr(module, "current_attempt", None)
    return int(current()) if callable(current) else 1


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


@safe("http.response_hook", None)
def response_hook(span: Span, params: Any) -> None:
    """aiohttp-client ``response_hook``: redact credentials (response headers included)."""
    if span is not None and span.is_recording():
        _redact(span)


def url_filter(url: Any) -> str:
    """The URL as recorded on spans: no query string, no user info."""
    try:
        return str(url.with_query(None).with_user(None).with_fragment(None))
    except Exception:  # not a yarl.URL: record nothing rather than something secret
        return ""


_instrumented_by_us = False


def instrument_aiohttp(tracer_provider: Any = None, meter_provider: Any = None) -> bool:
    """Instrument aiohttp client sessions with our hooks unless already instrumented.

    Returns whether this call instrumented it.
    """
    global _instrumented_by_us
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    except ImportError:  # the otel extra is partially installed: no HTTP spans, nothing else lost
        return False
    instrumentor = AioHttpClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return False
    hooks: dict[str, Callable[..., Any]] = {
        "request_hook": request_hook,
        "response_hook": response_hook,
        "url_filter": url_filter,
    }
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
