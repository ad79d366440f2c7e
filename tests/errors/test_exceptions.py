"""The exception hierarchy: builtin compatibility, context, pickling, str/repr, to_dict."""

from __future__ import annotations

import builtins
import pickle

import pytest

from pixel_llm_otel.errors import (
    APIError,
    CircuitBreakerOpen,
    ConnectionError,
    EncoderError,
    ErrorCode,
    PixelLMError,
    RetryExhausted,
    TimeoutError,
    ValidationError,
)
from pixel_llm_otel.errors.exceptions import BODY_EXCERPT_CHARS

ALL_ERRORS = [
    ConnectionError("refused", code=ErrorCode.CONNECTION_REFUSED, context={"url": "http://h"}),
    TimeoutError(code=ErrorCode.TIMEOUT_READ),
    ValidationError(field="images", value=3, expected="a tensor"),
    APIError(status=429, body="slow down", retry_after=2.0, code=ErrorCode.RATE_LIMITED),
    EncoderError(code=ErrorCode.ENCODER_OOM),
    CircuitBreakerOpen(breaker_name="llm", retry_after=12.5),
    RetryExhausted(attempts=3, last_error=TimeoutError(code=ErrorCode.TIMEOUT_READ)),
    PixelLMError("plain"),
]
IDS = [type(e).__name__ for e in ALL_ERRORS]


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConnectionError, builtins.ConnectionError),
        (TimeoutError, builtins.TimeoutError),
        (ValidationError, ValueError),
    ],
    ids=["connection", "timeout", "validation"],
)
def test_errors_are_also_the_matching_builtins(cls: type, builtin: type) -> None:
    """Existing `except ConnectionError/TimeoutError/ValueError` clauses catch our errors."""
    assert issubclass(cls, PixelLMError)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("x")


@pytest.mark.parametrize("err", ALL_ERRORS, ids=IDS)
def test_every_error_is_a_pixel_lm_error_with_its_code_metadata(err: PixelLMError) -> None:
    """Each error exposes the category, severity and suggestion of its code."""
    assert isinstance(err, PixelLMError)
    assert err.category is err.code.info.category
    assert err.severity is err.code.info.severity
    assert err.suggestion == err.code.info.suggestion
    assert err.error_type == type(err).__name__


def test_context_is_copied_not_shared() -> None:
    """Mutating the caller's dict after raising does not change the error's context."""
    ctx = {"url": "http://localhost:1234/v1"}
    err = PixelLMError("x", context=ctx)
    ctx["url"] = "changed"
    assert err.context == {"url": "http://localhost:1234/v1"}


@pytest.mark.parametrize("err", ALL_ERRORS, ids=IDS)
def test_pickle_round_trip_keeps_type_code_message_and_attributes(err: PixelLMError) -> None:
    """Errors survive pickling (multiprocessing, caches) with every attribute intact."""
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back.code is err.code
    assert back.message == err.message
    assert back.context == err.context
    assert back.retryable == err.retryable
    assert str(back) == str(err)
    for attr in ("status", "body_excerpt", "retry_after", "breaker_name", "attempts", "field"):
        if hasattr(err, attr):
            assert getattr(back, attr) == getattr(err, attr)


def test_str_and_repr_show_code_and_message() -> None:
    """str() leads with the ERR_ code; repr() names the class, code and message."""
    err = TimeoutError("read took too long", code=ErrorCode.TIMEOUT_READ)
    assert str(err) == "[ERR_TIMEOUT_READ] read took too long"
    assert repr(err) == "TimeoutError(code='ERR_TIMEOUT_READ', message='read took too long')"


def test_default_message_and_retryable_come_from_the_code() -> None:
    """Without arguments an error uses its default code's message and retryable flag."""
    err = TimeoutError()
    assert err.code is ErrorCode.TIMEOUT_TOTAL
    assert err.message == ErrorCode.TIMEOUT_TOTAL.info.message
    assert err.retryable is True
    assert TimeoutError(retryable=False).retryable is False


def test_cause_is_chained() -> None:
    """`cause=` sets both the attribute and __cause__."""
    low = ConnectionRefusedError(111, "refused")
    err = ConnectionError(cause=low)
    assert err.cause is low
    assert err.__cause__ is low
    assert err.to_dict()["cause"].startswith("ConnectionRefusedError")


def test_validation_error_names_field_value_and_expected() -> None:
    """The generated message names the field, a short value and what was expected."""
    err = ValidationError(field="max_attempts", value=0, expected="an int >= 1")
    assert str(err) == "[ERR_VALIDATION_TYPE] max_attempts: got 0, expected an int >= 1"
    assert err.retryable is False
    assert err.context == {"field": "max_attempts", "expected": "an int >= 1"}


def test_validation_error_describes_tensors_without_printing_them() -> None:
    """A tensor value is shown by shape and dtype, never element by element."""
    torch = pytest.importorskip("torch")
    err = ValidationError(field="images", value=torch.zeros(2, 3, 224, 224), expected="CHW")
    assert "shape=(2, 3, 224, 224)" in str(err)
    assert "0.0000" not in str(err)
    assert "tensor([" not in str(err)


def test_api_error_keeps_a_bounded_body_excerpt() -> None:
    """A huge error body is cut to BODY_EXCERPT_CHARS plus a note of what was cut."""
    err = APIError(status=500, body="x" * 10_000)
    assert err.body_excerpt is not None
    assert err.body_excerpt.startswith("x" * BODY_EXCERPT_CHARS)
    assert err.body_excerpt.endswith(f"[{10_000 - BODY_EXCERPT_CHARS} more chars]")
    assert err.context["http_status"] == 500


def test_circuit_breaker_open_message_and_negative_retry_after() -> None:
    """The message names the breaker and the wait; a negative wait is clamped to 0."""
    err = CircuitBreakerOpen(breaker_name="llm", retry_after=-3)
    assert err.retry_after == 0.0
    assert "'llm' is open" in str(err)
    assert err.context["breaker"] == "llm"


def test_retry_exhausted_chains_the_last_error() -> None:
    """RetryExhausted records attempts and chains the last error with its code."""
    last = APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)
    err = RetryExhausted(attempts=4, last_error=last)
    assert err.__cause__ is last
    assert err.context == {"attempts": 4, "last_error_code": "ERR_HTTP_UNAVAILABLE"}
    assert "gave up after 4 attempt(s)" in err.message


@pytest.mark.parametrize("err", ALL_ERRORS, ids=IDS)
def test_to_dict_is_json_friendly(err: PixelLMError) -> None:
    """to_dict() has the code, category, severity, retryable and suggestion as plain values."""
    import json

    data = err.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["error_code"] == err.code.value
    assert data["error_type"] == type(err).__name__


def test_to_dict_never_contains_secrets_from_headers_or_bodies() -> None:
    """The body is not part of to_dict(), so a key echoed by the server never leaks into logs."""
    secret = "sk-live-0123456789abcdef"
    err = APIError(
        status=401,
        body=f'{{"error": "invalid key {secret}"}}',
        code=ErrorCode.API_KEY_INVALID,
        context={"url": "http://localhost:1234/v1/chat/completions"},
    )
    assert secret not in repr(err.to_dict())
    assert secret not in str(err)
