"""The error model: one exception hierarchy, ``ERR_*`` codes and a classifier."""

from __future__ import annotations

from .classifier import (
    DEFAULT_CLASSIFIER,
    Classification,
    ErrorClassifier,
    parse_retry_after,
    status_code_to_error_code,
)
from .codes import CODE_INFO, ErrorCategory, ErrorCode, ErrorCodeInfo, ErrorSeverity
from .exceptions import (
    APIError,
    CircuitBreakerOpen,
    ClientClosedError,
    ConnectionError,
    EncoderError,
    PixelLMError,
    RetryExhausted,
    StreamInterrupted,
    TimeoutError,
    ValidationError,
)

__all__ = [
    "CODE_INFO",
    "DEFAULT_CLASSIFIER",
    "APIError",
    "CircuitBreakerOpen",
    "Classification",
    "ClientClosedError",
    "ConnectionError",
    "EncoderError",
    "ErrorCategory",
    "ErrorClassifier",
    "ErrorCode",
    "ErrorCodeInfo",
    "ErrorSeverity",
    "PixelLMError",
    "RetryExhausted",
    "StreamInterrupted",
    "TimeoutError",
    "ValidationError",
    "parse_retry_after",
    "status_code_to_error_code",
]
