"""The client's HTTP attempts, reported to the :mod:`~pixel_llm_otel.hooks` HTTP observer.

The client reports each attempt itself, around its ``session.post`` / ``session.get``: with no
observer installed that is one global read per request and aiohttp runs no trace hooks at all
(a session with any ``TraceConfig`` builds trace objects and awaits a coroutine per signal per
config on every request). The telemetry layer's observer turns each attempt into the ``POST``
span of the telemetry contract; it makes that span current, with OpenTelemetry's "suppress HTTP
instrumentation" key, before aiohttp starts the request, so an aiohttp instrumentation the host
enabled adds no second span for it.

An attempt starts when the request is handed to aiohttp (the observer may add propagation headers
to the request's own copy of its headers) and ends when the response headers arrive
(``response(status)``) or the request fails without a response (``fail(exc)``, the exception
already scrubbed of secrets): the span aiohttp's ``on_request_start`` / ``on_request_end`` /
``on_request_exception`` signals used to delimit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from multidict import CIMultiDict

from ._inbound import scrub_transport_error

if TYPE_CHECKING:
    from ..hooks import HttpObserver, HttpScope
    from ._secrets import Scrubber

__all__ = ["attempt_failed", "start_attempt"]


def start_attempt(
    observer: HttpObserver,
    method: str,
    url: object,
    session_headers: Mapping[str, str],
    headers: Mapping[str, str],
) -> tuple[CIMultiDict[str], HttpScope | None]:
    """``(headers to send, scope)`` of one observed attempt.

    The observer sees what aiohttp's request-start signal showed it: the session's default
    headers merged with the request's (credentials included: the observer redacts them), and
    injects into that copy, which the request then sends.
    """
    sent: CIMultiDict[str] = CIMultiDict(session_headers)
    sent.update(headers)
    return sent, observer.http_request(method, url, sent)


def attempt_failed(scope: HttpScope, error: BaseException, scrub: Scrubber) -> None:
    """End an observed attempt that got no response; the observer sees the error scrubbed."""
    scrub_transport_error(error, scrub)
    scope.fail(error)
