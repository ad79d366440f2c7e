"""ErrorClassifier: the mapping of library exceptions, HTTP statuses and Retry-After."""

from __future__ import annotations

import asyncio
import builtins
import errno
import json
import socket
import ssl
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pixel_llm_otel.errors import (
    DEFAULT_CLASSIFIER,
    APIError,
    ConnectionError,
    EncoderError,
    ErrorCategory,
    ErrorCode,
    PixelLMError,
    TimeoutError,
    ValidationError,
    parse_retry_after,
    status_code_to_error_code,
)

torch = pytest.importorskip("torch")
_URL = URL("http://127.0.0.1:1234/v1/chat/completions")
_REQUEST = aiohttp.RequestInfo(_URL, "POST", CIMultiDictProxy(CIMultiDict()), _URL)
NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=timezone.utc)


def _response_error(status: int, retry_after: str | None = None) -> aiohttp.ClientResponseError:
    headers: CIMultiDict[str] = CIMultiDict()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return aiohttp.ClientResponseError(
        _REQUEST,
        (),
        status=status,
        message="err",
        headers=CIMultiDictProxy(headers),
    )


@pytest.mark.parametrize(
    ("status", "code", "retryable", "trips"),
    [
        (400, ErrorCode.HTTP_BAD_REQUEST, False, False),
        (401, ErrorCode.API_KEY_INVALID, False, False),
        (403, ErrorCode.API_KEY_INVALID, False, False),
        (404, ErrorCode.HTTP_NOT_FOUND, False, False),
        (408, ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR, True, False),
        (409, ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR, True, False),
        (422, ErrorCode.HTTP_CLIENT_ERROR, False, False),
        (425, ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR, True, False),
        (429, ErrorCode.RATE_LIMITED, True, True),
        (500, ErrorCode.HTTP_SERVER_ERROR, True, True),
        (501, ErrorCode.HTTP_SERVER_ERROR, True, True),
        (502, ErrorCode.HTTP_UNAVAILABLE, True, True),
        (503, ErrorCode.HTTP_UNAVAILABLE, True, True),
        (504, ErrorCode.HTTP_UNAVAILABLE, True, True),
        (599, ErrorCode.HTTP_SERVER_ERROR, True, True),
    ],
    ids=lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else None,
)
def test_http_statuses(status: int, code: ErrorCode, retryable: bool, trips: bool) -> None:
    """408/409/425/429/5xx are retryable; other 4xx are not; only server trouble trips."""
    assert status_code_to_error_code(status) is code
    result = DEFAULT_CLASSIFIER.classify(_response_error(status))
    assert (result.code, result.retryable, result.trips_breaker) == (code, retryable, trips)
    assert result.status == status
    err = DEFAULT_CLASSIFIER.to_error(_response_error(status))
    assert isinstance(err, APIError)
    assert err.status == status
    assert err.code is code


def test_retry_after_header_is_read_from_a_response_error() -> None:
    """A 429's Retry-After header becomes the classification's retry_after."""
    result = DEFAULT_CLASSIFIER.classify(_response_error(429, "7"))
    assert result.retry_after == 7.0
    assert DEFAULT_CLASSIFIER.to_error(_response_error(429, "7")).retry_after == 7.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("  3 ", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Fri, 31 Jan 2025 12:00:30 GMT", 30.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
    ids=[
        "seconds",
        "padded",
        "fraction",
        "negative",
        "date-future",
        "date-literal",
        "date-past",
        "empty",
        "absent",
        "garbage",
        "nan",
        "inf",
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After as delta-seconds or HTTP-date (relative to the injected now)."""
    assert parse_retry_after(header, now=NOW.timestamp) == expected


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (asyncio.TimeoutError(), ErrorCode.TIMEOUT_TOTAL),
        (builtins.TimeoutError("timed out"), ErrorCode.TIMEOUT_TOTAL),
        (json.JSONDecodeError("Expecting value", "<html>", 0), ErrorCode.RESPONSE_MALFORMED),
        (ssl.SSLError(1, "WRONG_VERSION_NUMBER"), ErrorCode.CONNECTION_SSL),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ErrorCode.CONNECTION_DNS),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ErrorCode.CONNECTION_REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), ErrorCode.CONNECTION_RESET),
        (BrokenPipeError(errno.EPIPE, "pipe"), ErrorCode.CONNECTION_RESET),
        (OSError(errno.ECONNREFUSED, "refused"), ErrorCode.CONNECTION_REFUSED),
        (OSError(errno.ECONNRESET, "reset"), ErrorCode.CONNECTION_RESET),
        (OSError(errno.ETIMEDOUT, "timed out"), ErrorCode.TIMEOUT_CONNECT),
        (OSError(errno.EHOSTUNREACH, "no route"), ErrorCode.CONNECTION_REFUSED),
        (OSError(errno.ENETUNREACH, "unreachable"), ErrorCode.CONNECTION_REFUSED),
        (OSError(errno.EACCES, "denied"), ErrorCode.UNKNOWN),
        (KeyError("x"), ErrorCode.UNKNOWN),
        (RuntimeError("Event loop is closed"), ErrorCode.UNKNOWN),
    ],
    ids=[
        "asyncio-timeout",
        "socket-timeout",
        "json",
        "ssl",
        "gaierror",
        "refused",
        "reset",
        "broken-pipe",
        "errno-refused",
        "errno-reset",
        "errno-timedout",
        "errno-hostunreach",
        "errno-netunreach",
        "errno-other",
        "keyerror",
        "non-torch-runtime",
    ],
)
def test_stdlib_exceptions(exc: BaseException, code: ErrorCode) -> None:
    """asyncio, socket, ssl, json and OSError errnos map to their codes."""
    assert DEFAULT_CLASSIFIER.classify(exc).code is code


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (
            torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            ErrorCode.ENCODER_OOM,
        ),
        (RuntimeError("CUDA error: out of memory"), ErrorCode.ENCODER_OOM),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"
            ),
            ErrorCode.ENCODER_OOM,
        ),
        (MemoryError(), ErrorCode.ENCODER_OOM),
        (
            RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
            ErrorCode.ENCODER_RUNTIME,
        ),
        (
            RuntimeError("PytorchStreamReader failed reading zip archive"),
            ErrorCode.ENCODER_CHECKPOINT,
        ),
        (
            RuntimeError("Error(s) in loading state_dict for VisionEncoder: size mismatch"),
            ErrorCode.ENCODER_CHECKPOINT,
        ),
        (RuntimeError("CUDA error: invalid device ordinal"), ErrorCode.ENCODER_DEVICE),
    ],
    ids=[
        "cuda-oom",
        "oom-message",
        "cpu-alloc",
        "memoryerror",
        "shapes",
        "checkpoint-zip",
        "state-dict",
        "device-ordinal",
    ],
)
def test_torch_errors(exc: BaseException, code: ErrorCode) -> None:
    """torch failures map to encoder codes and translate to EncoderError."""
    assert DEFAULT_CLASSIFIER.classify(exc).code is code
    err = DEFAULT_CLASSIFIER.to_error(exc)
    assert isinstance(err, EncoderError)
    assert err.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "code", "cls"),
    [
        (aiohttp.ServerDisconnectedError(), ErrorCode.CONNECTION_RESET, ConnectionError),
        (aiohttp.ClientPayloadError("cut"), ErrorCode.CONNECTION_RESET, ConnectionError),
        (
            aiohttp.ClientOSError(errno.ECONNRESET, "reset"),
            ErrorCode.CONNECTION_RESET,
            ConnectionError,
        ),
        (aiohttp.ServerTimeoutError("read"), ErrorCode.TIMEOUT_READ, TimeoutError),
        (
            aiohttp.ContentTypeError(_REQUEST, (), status=200),
            ErrorCode.RESPONSE_MALFORMED,
            APIError,
        ),
        (aiohttp.InvalidURL("::"), ErrorCode.HTTP_CLIENT_ERROR, APIError),
    ],
    ids=[
        "disconnected",
        "payload",
        "client-os-reset",
        "server-timeout",
        "content-type",
        "invalid-url",
    ],
)
def test_aiohttp_errors(exc: BaseException, code: ErrorCode, cls: type[PixelLMError]) -> None:
    """aiohttp client errors map to codes and translate to the matching PixelLMError."""
    assert DEFAULT_CLASSIFIER.classify(exc).code is code
    assert isinstance(DEFAULT_CLASSIFIER.to_error(exc), cls)


def test_our_errors_keep_their_own_code_and_retryable_override() -> None:
    """A PixelLMError is classified by its own code, honouring a per-instance retryable."""
    err = APIError(status=409, code=ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR, retryable=False)
    result = DEFAULT_CLASSIFIER.classify(err)
    assert result.code is ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR
    assert result.retryable is False
    assert result.error_type == "APIError"
    assert DEFAULT_CLASSIFIER.to_error(err) is err


def test_validation_errors_are_not_retryable_and_do_not_trip() -> None:
    """A caller bug is never retried and never counts against the server."""
    result = DEFAULT_CLASSIFIER.classify(ValidationError(field="x", value=1, expected="str"))
    assert result.category is ErrorCategory.VALIDATION
    assert (result.retryable, result.trips_breaker) == (False, False)


def test_foreign_error_type_is_qualified() -> None:
    """error.type of a library exception is its qualified name; builtins stay short."""
    assert DEFAULT_CLASSIFIER.classify(KeyError()).error_type == "KeyError"
    assert (
        DEFAULT_CLASSIFIER.classify(aiohttp.ServerDisconnectedError()).error_type
        == "aiohttp.client_exceptions.ServerDisconnectedError"
    )


def test_to_error_survives_an_exception_whose_str_fails() -> None:
    """An aiohttp error built without request info cannot be printed; translation still works."""
    bare = aiohttp.ClientResponseError(None, (), status=503)  # type: ignore[arg-type]
    err = DEFAULT_CLASSIFIER.to_error(bare)
    assert err.code is ErrorCode.HTTP_UNAVAILABLE
    assert "<unprintable>" in err.message


def test_unknown_translates_to_base_error() -> None:
    """An unclassifiable exception becomes a plain PixelLMError with ERR_UNKNOWN, chained."""
    low = KeyError("choices")
    err = DEFAULT_CLASSIFIER.to_error(low, context={"stage": "parse"})
    assert type(err) is PixelLMError
    assert err.code is ErrorCode.UNKNOWN
    assert err.__cause__ is low
    assert err.context == {"stage": "parse"}
