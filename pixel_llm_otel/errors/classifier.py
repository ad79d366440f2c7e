"""Classify any exception into an ``ERR_*`` code, a category, a severity and what to do.

The classifier is the one place that knows how aiohttp, asyncio, the OS, json and torch report
failures. The retry policy asks it what is retryable, the circuit breaker what counts as a server
failure, the client uses :meth:`ErrorClassifier.to_error` to translate at the boundary, and the
telemetry layer reads ``error.type`` / ``pixel_llm.error.code`` / category from it.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import errno
import json
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .codes import CODE_INFO, ErrorCategory, ErrorCode, ErrorSeverity
from .exceptions import (
    APIError,
    ConnectionError,
    EncoderError,
    PixelLMError,
    TimeoutError,
)

__all__ = ["Classification", "ErrorClassifier", "parse_retry_after", "status_code_to_error_code"]

#: HTTP statuses in the 4xx range that ask for the request to be repeated.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 409, 425})


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classifier concluded about one exception."""

    code: ErrorCode
    category: ErrorCategory
    severity: ErrorSeverity
    retryable: bool
    trips_breaker: bool
    suggestion: str
    error_type: str
    retry_after: float | None = None
    status: int | None = None


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP-date. ``None`` if absent/invalid.

    Negative values and dates in the past give ``0.0``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now())


def status_code_to_error_code(status: int) -> ErrorCode:
    """The code of an HTTP error status."""
    if status in (401, 403):
        return ErrorCode.API_KEY_INVALID
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in TRANSIENT_CLIENT_STATUSES:
        return ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR
    if status == 400:
        return ErrorCode.HTTP_BAD_REQUEST
    if status == 404:
        return ErrorCode.HTTP_NOT_FOUND
    if status in (502, 503, 504):
        return ErrorCode.HTTP_UNAVAILABLE
    if 500 <= status <= 599:
        return ErrorCode.HTTP_SERVER_ERROR
    if 400 <= status <= 499:
        return ErrorCode.HTTP_CLIENT_ERROR
    return ErrorCode.RESPONSE_INVALID


class ErrorClassifier:
    """Maps exceptions to :class:`Classification` and translates them to :class:`PixelLMError`.

    Stateless and thread-safe; :data:`DEFAULT_CLASSIFIER` is the shared instance.
    """

    def classify(self, exc: BaseException) -> Classification:
        """Classify ``exc`` (any exception, ours or a library's)."""
        if isinstance(exc, PixelLMError):
            info = exc.code.info
            return Classification(
                code=exc.code,
                category=info.category,
                severity=info.severity,
                retryable=exc.retryable,
                trips_breaker=info.trips_breaker,
                suggestion=info.suggestion,
                error_type=exc.error_type,
                retry_after=getattr(exc, "retry_after", None),
                status=getattr(exc, "status", None),
            )
        code, status, retry_after = self._code_of(exc)
        info = CODE_INFO[code]
        return Classification(
            code=code,
            category=info.category,
            severity=info.severity,
            retryable=info.retryable,
            trips_breaker=info.trips_breaker,
            suggestion=info.suggestion,
            error_type=_qualified_name(type(exc)),
            retry_after=retry_after,
            status=status,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        return self.classify(exc).retryable

    def to_error(
        self, exc: BaseException, *, context: Mapping[str, object] | None = None
    ) -> PixelLMError:
        """Translate ``exc`` to the matching :class:`PixelLMError` subclass (chained to ``exc``).

        A :class:`PixelLMError` is returned unchanged.
        """
        if isinstance(exc, PixelLMError):
            return exc
        code, status, retry_after = self._code_of(exc)
        category = CODE_INFO[code].category
        message = f"{CODE_INFO[code].message} ({type(exc).__name__}: {_safe_str(exc)})"
        message = message.replace(": )", ")")
        if category is ErrorCategory.TIMEOUT:
            return TimeoutError(message, code=code, context=context, cause=exc)
        if category is ErrorCategory.CONNECTION:
            return ConnectionError(message, code=code, context=context, cause=exc)
        if category is ErrorCategory.ENCODER:
            return EncoderError(message, code=code, context=context, cause=exc)
        if code is ErrorCode.UNKNOWN:
            return PixelLMError(message, code=code, context=context, cause=exc)
        return APIError(
            message,
            code=code,
            status=status,
            retry_after=retry_after,
            context=context,
            cause=exc,
        )

    # --- the mapping --------------------------------------------------------------------
    def _code_of(self, exc: BaseException) -> tuple[ErrorCode, int | None, float | None]:
        aiohttp_result = _classify_aiohttp(exc)
        if aiohttp_result is not None:
            return aiohttp_result
        if isinstance(exc, (asyncio.TimeoutError, builtins.TimeoutError)):
            if getattr(exc, "errno", None) == errno.ETIMEDOUT:  # the OS gave up connecting
                return ErrorCode.TIMEOUT_CONNECT, None, None
            return ErrorCode.TIMEOUT_TOTAL, None, None
        if isinstance(exc, json.JSONDecodeError):
            return ErrorCode.RESPONSE_MALFORMED, None, None
        if isinstance(exc, ssl.SSLError):
            return ErrorCode.CONNECTION_SSL, None, None
        if isinstance(exc, socket.gaierror):
            return ErrorCode.CONNECTION_DNS, None, None
        if isinstance(exc, builtins.ConnectionRefusedError):
            return ErrorCode.CONNECTION_REFUSED, None, None
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return ErrorCode.CONNECTION_RESET, None, None
        torch_code = _classify_torch(exc)
        if torch_code is not None:
            return torch_code, None, None
        if isinstance(exc, OSError) and exc.errno is not None:
            return _code_of_errno(exc.errno), None, None
        return ErrorCode.UNKNOWN, None, None


def _code_of_errno(number: int) -> ErrorCode:
    if number == errno.ECONNREFUSED:
        return ErrorCode.CONNECTION_REFUSED
    if number in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return ErrorCode.CONNECTION_RESET
    if number == errno.ETIMEDOUT:
        return ErrorCode.TIMEOUT_CONNECT
    if number in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return ErrorCode.CONNECTION_REFUSED
    return ErrorCode.UNKNOWN


def _aiohttp_types(aiohttp: Any, *names: str) -> tuple[type[BaseException], ...]:
    """The named aiohttp exception classes that this aiohttp version has (3.9 lacks some)."""
    return tuple(t for t in (getattr(aiohttp, n, None) for n in names) if isinstance(t, type))


def _classify_aiohttp(exc: BaseException) -> tuple[ErrorCode, int | None, float | None] | None:
    aiohttp = sys.modules.get("aiohttp")  # an aiohttp error implies aiohttp is imported
    if aiohttp is None or not isinstance(exc, aiohttp.ClientError):
        return None
    # Order matters: the most specific classes first.
    if _from_http_parser(exc, aiohttp):  # not HTTP: a garbage status line, bad headers, bad gzip
        return ErrorCode.RESPONSE_MALFORMED, None, None
    if isinstance(exc, aiohttp.ClientResponseError):
        if isinstance(exc, aiohttp.ContentTypeError):
            return ErrorCode.RESPONSE_MALFORMED, exc.status, None
        if isinstance(exc, aiohttp.TooManyRedirects):
            return ErrorCode.RESPONSE_INVALID, exc.status or None, None
        headers = exc.headers or {}
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return status_code_to_error_code(exc.status), exc.status, retry_after
    if isinstance(exc, _aiohttp_types(aiohttp, "ConnectionTimeoutError")):
        return ErrorCode.TIMEOUT_CONNECT, None, None
    if isinstance(exc, aiohttp.ServerTimeoutError):  # SocketTimeoutError (sock_read) included
        return ErrorCode.TIMEOUT_READ, None, None
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError)):
        return ErrorCode.CONNECTION_SSL, None, None
    if isinstance(exc, _aiohttp_types(aiohttp, "ClientConnectorDNSError")):
        return ErrorCode.CONNECTION_DNS, None, None
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return ErrorCode.CONNECTION_DNS, None, None
        if isinstance(os_error, ssl.SSLError):
            return ErrorCode.CONNECTION_SSL, None, None
        if isinstance(os_error, (asyncio.TimeoutError, builtins.TimeoutError)):
            return ErrorCode.TIMEOUT_CONNECT, None, None
        if os_error.errno is not None:
            code = _code_of_errno(os_error.errno)
            if code is not ErrorCode.UNKNOWN:
                return code, None, None
        return ErrorCode.CONNECTION_REFUSED, None, None
    if isinstance(exc, aiohttp.InvalidURL):
        return ErrorCode.HTTP_CLIENT_ERROR, None, None
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        # ServerDisconnectedError, ClientOSError, ClientConnectionResetError, payload cut short
        return ErrorCode.CONNECTION_RESET, None, None
    return ErrorCode.UNKNOWN, None, None


def _from_http_parser(exc: BaseException, aiohttp: Any) -> bool:
    """Whether aiohttp's HTTP parser rejected what the server sent (not a cut-short body).

    A non-HTTP status line reaches us as ``ClientResponseError(status=400)`` caused by the
    parser's ``BadStatusLine``: that 400 is aiohttp's verdict, not the server's. A body whose
    content encoding does not decode is a ``ClientPayloadError`` caused by
    ``ContentEncodingError``; other payload errors (a body cut short) stay connection resets.
    """
    parser = sys.modules.get("aiohttp.http_exceptions")
    if parser is None:
        return False
    if isinstance(exc, aiohttp.ClientPayloadError):
        wanted: type[BaseException] = parser.ContentEncodingError
    elif type(exc) is aiohttp.ClientResponseError:
        wanted = parser.HttpProcessingError
    else:
        return False
    cause = exc.__cause__ or exc.__context__
    for _ in range(8):
        if cause is None:
            return False
        if isinstance(cause, wanted) or any(isinstance(a, wanted) for a in cause.args):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


#: Substrings of torch messages about an unusable device.
_DEVICE_MESSAGES = (
    "not compiled with cuda",
    "no nvidia driver",
    "no cuda gpus",
    "cuda is not available",
    "cuda driver",
    "invalid device ordinal",
    "mps backend is not available",
    "mps is not available",
)
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")
#: Substrings that mark a plain RuntimeError raised by torch's C++ core (no Python frame of torch).
_TORCH_MESSAGES = (
    "tensor",
    "shape",
    "size mismatch",
    "dtype",
    "cuda",
    "mat1",
    "dimension",
    "allocator",
    "enforce fail",
    "out of memory",
    "device",
    "pytorchstreamreader",
    "state_dict",
)


def _classify_torch(exc: BaseException) -> ErrorCode | None:
    """Encoder codes for errors raised by torch. Never imports torch.

    An error is torch's when its class lives in torch, a frame of its traceback is torch code, or
    it is a plain ``RuntimeError`` with a message typical of torch's C++ core.
    """
    torch = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if (isinstance(oom_type, type) and isinstance(exc, oom_type)) or isinstance(exc, MemoryError):
        return ErrorCode.ENCODER_OOM
    if torch is None:
        return None
    modules = _traceback_modules(exc)
    if "torch.serialization" in modules:  # torch.load: missing, truncated or garbage checkpoint
        return ErrorCode.ENCODER_CHECKPOINT
    text = str(exc).lower()
    from_torch = type(exc).__module__.split(".")[0] == "torch" or any(
        m.split(".")[0] == "torch" for m in modules
    )
    if not from_torch and not (
        type(exc) is RuntimeError and any(m in text for m in _TORCH_MESSAGES)
    ):
        return None
    if any(m in text for m in _OOM_MESSAGES):
        return ErrorCode.ENCODER_OOM
    if any(m in text for m in _DEVICE_MESSAGES):
        return ErrorCode.ENCODER_DEVICE
    if "pytorchstreamreader" in text or "error(s) in loading state_dict" in text:
        return ErrorCode.ENCODER_CHECKPOINT
    return ErrorCode.ENCODER_RUNTIME


def _traceback_modules(exc: BaseException) -> set[str]:
    """Module names of the frames ``exc`` passed through."""
    names: set[str] = set()
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__")
        if isinstance(name, str):
            names.add(name)
        tb = tb.tb_next
    return names


def _safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's own __str__ fails (aiohttp errors
    built without request info do)."""
    try:
        return str(exc)
    except Exception:
        return "<unprintable>"


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


#: The shared, stateless classifier.
DEFAULT_CLASSIFIER = ErrorClassifier()
