"""pixel-llm-otel: a resilient, observable image-to-text pipeline.

A torch vision encoder summarises an image, an OpenAI-compatible chat-completions server (LM Studio
by default) writes the caption; around that call: typed errors, retry with backoff, a circuit
breaker, fallbacks, validation, JSON logging and OpenTelemetry.
"""

from __future__ import annotations

from ._version import __version__
from .errors import (
    APIError,
    CircuitBreakerOpen,
    ConnectionError,
    EncoderError,
    ErrorCategory,
    ErrorClassifier,
    ErrorCode,
    ErrorSeverity,
    PixelLMError,
    RetryExhausted,
    TimeoutError,
    ValidationError,
)

__all__ = [
    "APIError",
    "CircuitBreakerOpen",
    "ConnectionError",
    "EncoderError",
    "ErrorCategory",
    "ErrorClassifier",
    "ErrorCode",
    "ErrorSeverity",
    "PixelLMError",
    "RetryExhausted",
    "TimeoutError",
    "ValidationError",
    "__version__",
]
