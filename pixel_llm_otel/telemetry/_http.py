"""HTTP attempt spans: the client reports each attempt, we make it the ``POST`` span.

Each attempt of a chat request is one ``POST`` CLIENT span under ``chat {model}``, created by
:class:`HttpSpans` from the LLM client's own aiohttp trace config (``client/_tracing.py``): it
injects ``traceparent``, sets ``http.request.resend_count`` on attempts after the first (read from
the running retry policy), and records the URL without query string or user info.

While the span is current the context carries OpenTelemetry's "suppress HTTP instrumentation"
key, so an aiohttp instrumentation the host enabled (``opentelemetry-instrumentation-aiohttp-
client``, or ``opentelemetry-instrument`` with every installed instrumentor), whichever order it
was enabled in, adds no second span for our requests and the host's own sessions are untouched.
Inside ``suppress_instrumentation()`` no span is made at all. Under a span whose trace is not
sampled (a sampled-out call) no span is made either: the trace context is injected as it is (the
``traceparent`` says not sampled), and HTTP instrumentation is suppressed for the request only when
the aiohttp-client instrumentation is loaded (nothing else reads that key for our session).

Headers named by ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` / ``_RESPONSE`` are
recorded as the aiohttp instrumentation would (read once, at instrumentation), with credentials
(``Authorization``-like headers and ``..._SANITIZE_FIELDS``) overwritten by ``[REDACTED]``.
:func:`request_hook` / :func:`response_hook` remain for hosts that instrument aiohttp themselves
and want the resend count and redaction on their own spans.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY

from . import _names as n
from ._context import attach, current_context, detach, inject
from ._safety import report_failure, safe
from ._scope import LIGHT, OFF, LightPolicy, scope_mode

__all__ = ["REDACTED", "HttpSpans", "request_hook", "response_hook", "url_filter"]

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


def _suppress_key() -> str:
    from opentelemetry.instrumentation.utils import (  # type: ignore[attr-defined]
        _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    )

    return str(_SUPPRESS_HTTP_INSTRUMENTATION_KEY)


_SUPPRESS_HTTP = _suppress_key()
#: The host instrumentation that honours the suppression key on aiohttp requests.
_AIOHTTP_INSTRUMENTATION = "opentelemetry.instrumentation.aiohttp_client"
_CLIENT = SpanKind.CLIENT
#: Distinct ``(method, url)`` attribute sets kept (a client posts to one URL; bounded anyway).
_BASE_MAX = 64


class _Attempt:
    """One ``POST`` span: current (with HTTP instrumentation suppressed) until the response."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    def _end(self) -> None:
        try:
            self._span.end()
        finally:
            detach(self._token)

    def response(self, status: int) -> None:
        try:
            span = self._span
            if span.is_recording():
                span.set_attribute(n.HTTP_RESPONSE_STATUS_CODE, status)
                if status >= 400:
                    span.set_attribute(n.ERROR_TYPE, str(status))
                    span.set_status(Status(StatusCode.ERROR))
        except Exception:
            report_failure("http.response")
        try:
            self._end()
        except Exception:
            report_failure("http.end")

    def fail(self, error: BaseException) -> None:
        try:
            span = self._span
            if span.is_recording():
                error_type = type(error).__qualname__
                span.set_attribute(n.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
                span.record_exception(error)
        except Exception:
            report_failure("http.fail")
        try:
            self._end()
        except Exception:
            report_failure("http.end")


class _Suppressed:
    """A sampled-out attempt: no span; HTTP instrumentation suppressed until it is over."""

    __slots__ = ("_token",)

    def __init__(self, token: object) -> None:
        self._token = token

    def response(self, status: int) -> None:
        try:
            detach(self._token)
        except Exception:
            report_failure("http.end")

    def fail(self, error: BaseException) -> None:
        self.response(0)


class HttpSpans:
    """The :class:`~pixel_llm_otel.hooks.HttpObserver` that makes the contract's ``POST`` spans."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._light = LightPolicy(tracer)
        self._request_headers, self._sensitive = _captured_headers()
        self._base: dict[tuple[str, object] | None, dict[str, Any]] = {}

    def _base_attributes(self, method: str, url: object) -> dict[str, Any]:
        """The attempt-independent attributes, built once per ``(method, url)`` and shared
        (never mutated: the SDK copies what it is given)."""
        key: tuple[str, object] | None = (method, url)
        try:
            found = self._base.get(key)
        except TypeError:  # an unhashable URL object: build it every time
            key, found = None, None
        if found is None:
            found = {n.HTTP_REQUEST_METHOD: method, n.URL_FULL: url_filter(url)}
            host = getattr(url, "host", None)
            if host:
                found[n.SERVER_ADDRESS] = host
                port = getattr(url, "port", None)
                if port is not None:
                    found[n.SERVER_PORT] = port
            if key is not None:
                if len(self._base) >= _BASE_MAX:
                    self._base.clear()
                self._base[key] = found
        return found

    def http_request(
        self, method: str, url: object, headers: MutableMapping[str, str]
    ) -> _Attempt | _Suppressed | None:
        try:
            parent = current_context()
            mode = scope_mode(parent, self._light())
            if mode == OFF or parent.get(_SUPPRESS_HTTP):
                return None
            if mode == LIGHT:  # sampled out: propagate the context, no span
                inject(headers, parent, parent[_SPAN_KEY].get_span_context())  # type: ignore[attr-defined]
                if _AIOHTTP_INSTRUMENTATION not in sys.modules:
                    return None
                return _Suppressed(attach(Context({**parent, _SUPPRESS_HTTP: True})))
            attributes = self._base_attributes(method, url)
            attempt = _current_attempt()
            if attempt > 1 or self._request_headers:
                attributes = dict(attributes)
                if attempt > 1:
                    attributes[n.HTTP_REQUEST_RESEND_COUNT] = attempt - 1
                if self._request_headers:
                    attributes.update(self._header_attributes(headers))
            span = self._tracer.start_span(method, parent, _CLIENT, attributes)
            # One new context holding both the span and the suppression key (not two copies).
            ctx = Context({**parent, _SPAN_KEY: span, _SUPPRESS_HTTP: True})
            token = attach(ctx)
            inject(headers, ctx, span.get_span_context())
            return _Attempt(span, token)
        except Exception:
            report_failure("http.request")
            return None

    def _header_attributes(self, headers: MutableMapping[str, str]) -> dict[str, Any]:
        from opentelemetry.util.http import (
            get_custom_header_attributes,
            normalise_request_header_name,
        )

        getall = getattr(headers, "getall", None)
        values = {k: getall(k) if getall else [headers[k]] for k in headers}
        found = get_custom_header_attributes(
            values, self._request_headers, self._sensitive, normalise_request_header_name
        )
        redacted: dict[str, Any] = {}
        for key, value in found.items():
            header = key.split(".", 3)[3]
            redacted[key] = [REDACTED] if _SENSITIVE.match(header) else value
        return redacted


def _captured_headers() -> tuple[list[str], list[str]]:
    """Request headers to record and sanitize, read as the aiohttp instrumentation reads them."""
    try:
        from opentelemetry.util.http import (
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST as REQUEST,
        )
        from opentelemetry.util.http import (
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS as SANITIZE,
        )
        from opentelemetry.util.http import get_custom_headers
    except ImportError:  # opentelemetry-util-http missing: record no header
        return [], []
    return get_custom_headers(REQUEST), get_custom_headers(SANITIZE)
