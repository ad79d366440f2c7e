"""pixel-llm-otel: a resilient, observable image-to-text pipeline.

A torch vision encoder summarises an image, an OpenAI-compatible chat-completions server (LM Studio
by default) writes the caption; around that call: typed errors, retry with backoff, a circuit
breaker, fallbacks, validation, JSON logging and OpenTelemetry (``pixel_llm_otel.telemetry``).

The error model and the resilience primitives are imported eagerly (they are light); the pipeline,
the client and validation load on first use, so ``import pixel_llm_otel`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    APIError,
    CircuitBreakerOpen,
    ClientClosedError,
    ConnectionError,
    EncoderError,
    ErrorCategory,
    ErrorClassifier,
    ErrorCode,
    ErrorSeverity,
    PixelLMError,
    RetryExhausted,
    StreamInterrupted,
    TimeoutError,
    ValidationError,
)
from .resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    FallbackConfig,
    FallbackManager,
    FallbackResult,
    RetryConfig,
    RetryPolicy,
    retry,
)

if TYPE_CHECKING:
    from .client import LMStudioClient, SyncLMStudioClient
    from .monitoring import ErrorMetrics, StructuredLogger
    from .pipeline import (
        AsyncHybridPixelLLM,
        ErrorConfig,
        GenerateResult,
        HybridConfig,
        HybridPixelLLM,
    )
    from .validation import sanitize_input, validate_config, validate_image_tensor, validate_tensor

# name -> module that defines it, imported on first attribute access
_LAZY = {
    "AsyncHybridPixelLLM": ".pipeline",
    "ErrorConfig": ".pipeline",
    "ErrorMetrics": ".monitoring",
    "GenerateResult": ".pipeline",
    "HybridConfig": ".pipeline",
    "HybridPixelLLM": ".pipeline",
    "LMStudioClient": ".client",
    "StructuredLogger": ".monitoring",
    "SyncLMStudioClient": ".client",
    "sanitize_input": ".validation",
    "validate_config": ".validation",
    "validate_image_tensor": ".validation",
    "validate_tensor": ".validation",
}

__all__ = [
    "APIError",
    "AsyncHybridPixelLLM",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOpen",
    "CircuitState",
    "ClientClosedError",
    "ConnectionError",
    "EncoderError",
    "ErrorCategory",
    "ErrorClassifier",
    "ErrorCode",
    "ErrorConfig",
    "ErrorMetrics",
    "ErrorSeverity",
    "FallbackConfig",
    "FallbackManager",
    "FallbackResult",
    "GenerateResult",
    "HybridConfig",
    "HybridPixelLLM",
    "LMStudioClient",
    "PixelLMError",
    "RetryConfig",
    "RetryExhausted",
    "RetryPolicy",
    "StreamInterrupted",
    "StructuredLogger",
    "SyncLMStudioClient",
    "TimeoutError",
    "ValidationError",
    "__version__",
    "retry",
    "sanitize_input",
    "validate_config",
    "validate_image_tensor",
    "validate_tensor",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
