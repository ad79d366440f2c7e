"""The exception hierarchy. Every error the package raises is a :class:`PixelLMError`::

    PixelLMError
    ├── ConnectionError     (also builtins.ConnectionError)  server unreachable / connection dropped
    ├── TimeoutError        (also builtins.TimeoutError)     connect, read or total timeout
    ├── ValidationError     (also ValueError)                bad input or configuration (caller bug)
    ├── APIError                                             HTTP error status or unusable response
    ├── StreamInterrupted                                    a stream failed after its first content
    ├── EncoderError                                         the torch vision encoder failed
    ├── CircuitBreakerOpen                                   refused fast by an open breaker
    ├── RetryExhausted                                       every attempt failed; last one chained
    └── ClientClosedError   (also RuntimeError)              used after close, or closed mid-call

Lower-level exceptions (aiohttp, asyncio, OSError, json, torch) are translated at the boundary
with ``raise ... from exc``; :class:`~pixel_llm_otel.errors.ErrorClassifier` does the mapping.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from .codes import ErrorCategory, ErrorCode, ErrorCodeInfo, ErrorSeverity

__all__ = [
    "APIError",
    "CircuitBreakerOpen",
    "ClientClosedError",
    "ConnectionError",
    "EncoderError",
    "PixelLMError",
    "RetryExhausted",
    "StreamInterrupted",
    "TimeoutError",
    "ValidationError",
]

#: Bodies of HTTP error responses are kept only up to this many characters.
BODY_EXCERPT_CHARS = 512


class PixelLMError(Exception):
    """Base of every error raised by pixel-llm-otel.

    Attributes:
        code: the :class:`ErrorCode` (``str(code)`` is the ``ERR_*`` string).
        message: a human-readable message (defaults to the code's message).
        context: extra, non-secret facts about the failure (field names, URLs without
            credentials, attempt numbers...). Copied; never holds prompts or API keys.
        retryable: whether retrying may succeed (defaults to the code's default).
        cause: the lower-level exception, if any (also ``__cause__``).
    """

    default_code: ErrorCode = ErrorCode.UNKNOWN

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        context: Mapping[str, Any] | None = None,
        retryable: bool | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.code: ErrorCode = ErrorCode(code) if code is not None else self.default_code
        self.message: str = message if message is not None else self.code.info.message
        self.context: dict[str, Any] = dict(context or {})
        self.retryable: bool = self.code.info.retryable if retryable is None else retryable
        self.cause: BaseException | None = cause
        if cause is not None:
            self.__cause__ = cause
        super().__init__(self.message)

    # --- metadata shortcuts -------------------------------------------------------------
    @property
    def info(self) -> ErrorCodeInfo:
        return self.code.info

    @property
    def category(self) -> ErrorCategory:
        return self.code.info.category

    @property
    def severity(self) -> ErrorSeverity:
        return self.code.info.severity

    @property
    def suggestion(self) -> str:
        return self.code.info.suggestion

    @property
    def error_type(self) -> str:
        """Low-cardinality identifier used as the ``error.type`` telemetry attribute."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (used by the structured logger)."""
        data: dict[str, Any] = {
            "error_type": self.error_type,
            "error_code": str(self.code),
            "category": str(self.category),
            "severity": str(self.severity),
            "retryable": self.retryable,
            "message": self.message,
            "suggestion": self.suggestion,
        }
        if self.context:
            data["context"] = dict(self.context)
        if self.cause is not None:
            data["cause"] = f"{type(self.cause).__name__}: {self.cause}"
        return data

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors need help to survive pickling (multiprocessing, caches).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[PixelLMError], state: dict[str, Any]) -> PixelLMError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConnectionError(PixelLMError, builtins.ConnectionError):
    """The LLM server could not be reached, or dropped the connection."""

    default_code = ErrorCode.CONNECTION_REFUSED


class TimeoutError(PixelLMError, builtins.TimeoutError):
    """The LLM server did not answer within a timeout (connect, read or total)."""

    default_code = ErrorCode.TIMEOUT_TOTAL


class ValidationError(PixelLMError, ValueError):
    """Bad input or configuration. A caller bug: never retried, never trips the breaker.

    Attributes:
        field: the name of the offending argument or configuration field.
        value: a short ``repr`` of the offending value (never the whole tensor).
        expected: what would have been accepted.
    """

    default_code = ErrorCode.VALIDATION_TYPE

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
        code: ErrorCode | None = None,
        context: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        ctx = dict(context or {})
        if field is not None:
            ctx.setdefault("field", field)
        if expected is not None:
            ctx.setdefault("expected", expected)
        if message is None and field is not None:
            message = f"{field}: got {_short_repr(value)}, expected {expected or 'a valid value'}"
        super().__init__(message, code=code, context=ctx, retryable=False, cause=cause)


class APIError(PixelLMError):
    """The LLM server answered with an error status or a body we cannot use.

    Attributes:
        status: the HTTP status code (``None`` for an unusable 200 body).
        body_excerpt: at most :data:`BODY_EXCERPT_CHARS` characters of the response body.
        retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    """

    default_code = ErrorCode.HTTP_SERVER_ERROR

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        code: ErrorCode | None = None,
        context: Mapping[str, Any] | None = None,
        retryable: bool | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.status = status
        self.body_excerpt = _excerpt(body)
        self.retry_after = retry_after
        ctx = dict(context or {})
        if status is not None:
            ctx.setdefault("http_status", status)
        if retry_after is not None:
            ctx.setdefault("retry_after_s", retry_after)
        super().__init__(message, code=code, context=ctx, retryable=retryable, cause=cause)


class StreamInterrupted(PixelLMError):
    """A streamed answer failed after its first content chunk; never retried automatically.

    The caller already holds the text of the chunks it was given; the failure behind it (a reset,
    an idle timeout, a malformed event, the deadline) is ``cause`` (also ``__cause__``).

    Attributes:
        chunks: content chunks delivered before the failure.
        cause_code: the ``ERR_*`` code of the failure behind it, when it has one.
    """

    default_code = ErrorCode.STREAM_INTERRUPTED

    def __init__(
        self,
        message: str | None = None,
        *,
        chunks: int,
        cause: BaseException,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.chunks = chunks
        self.cause_code = str(cause.code) if isinstance(cause, PixelLMError) else None
        ctx = dict(context or {})
        ctx.setdefault("chunks", chunks)
        if self.cause_code is not None:
            ctx.setdefault("cause_code", self.cause_code)
        if message is None:
            message = f"the stream failed after {chunks} content chunk(s): {cause}"
        super().__init__(message, context=ctx, cause=cause)


class EncoderError(PixelLMError):
    """The torch vision encoder failed (out of memory, runtime error, bad checkpoint, device)."""

    default_code = ErrorCode.ENCODER_RUNTIME


class CircuitBreakerOpen(PixelLMError):
    """A call was refused without being attempted because the circuit breaker is open.

    Attributes:
        breaker_name: the breaker's name.
        state: ``"open"``, or ``"half_open"`` when every probe slot was taken.
        retry_after: seconds until the breaker lets a probe through (0 when half-open).
    """

    default_code = ErrorCode.CIRCUIT_OPEN

    def __init__(
        self,
        message: str | None = None,
        *,
        breaker_name: str,
        state: str = "open",
        retry_after: float = 0.0,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.breaker_name = breaker_name
        self.state = state
        self.retry_after = max(0.0, retry_after)
        ctx = dict(context or {})
        ctx.setdefault("breaker", breaker_name)
        ctx.setdefault("state", state)
        ctx.setdefault("retry_after_s", round(self.retry_after, 3))
        if message is None:
            message = (
                f"circuit breaker {breaker_name!r} is {state}; "
                f"next probe in {self.retry_after:.1f}s"
            )
        super().__init__(message, context=ctx)


class RetryExhausted(PixelLMError):
    """Every attempt failed, or the deadline left no time for another one.

    Attributes:
        attempts: how many attempts were made.
        last_error: the last attempt's exception (also ``__cause__``).
    """

    default_code = ErrorCode.RETRY_EXHAUSTED

    def __init__(
        self,
        message: str | None = None,
        *,
        attempts: int,
        last_error: BaseException,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.attempts = attempts
        self.last_error = last_error
        ctx = dict(context or {})
        ctx.setdefault("attempts", attempts)
        if isinstance(last_error, PixelLMError):
            ctx.setdefault("last_error_code", str(last_error.code))
        if message is None:
            message = f"gave up after {attempts} attempt(s); last error: {last_error}"
        super().__init__(message, context=ctx, cause=last_error)


class ClientClosedError(PixelLMError, builtins.RuntimeError):
    """The client or pipeline was closed before the call, or while it was running.

    Every entry point raises it the same way, sync and async, whatever ``raise_on_failure``
    says: no fallback answers for a closed instance.
    """

    default_code = ErrorCode.CLIENT_CLOSED

    def __init__(
        self,
        message: str | None = None,
        *,
        what: str = "client",
        context: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.setdefault("closed", what)
        if message is None:
            message = f"{what} is closed"
        super().__init__(message, context=ctx, retryable=False, cause=cause)


def _excerpt(body: str | None) -> str | None:
    if body is None:
        return None
    if len(body) <= BODY_EXCERPT_CHARS:
        return body
    return body[:BODY_EXCERPT_CHARS] + f"... [{len(body) - BODY_EXCERPT_CHARS} more chars]"


def _short_repr(value: Any, limit: int = 80) -> str:
    """A bounded description of ``value``; tensors are described, never printed whole.

    Never raises: a nested tensor has no shape, ``repr`` of a huge int or of a hostile object may
    raise, and a description must not replace the error it is part of.
    """
    try:
        shape = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", None)
        if shape is not None and dtype is not None:
            return f"{type(value).__name__}(shape={tuple(shape)}, dtype={dtype})"
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
