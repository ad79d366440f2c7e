"""``HybridPixelLLM``: validate -> encode -> circuit breaker -> retry(HTTP attempt) -> fallback.

Modules: ``config`` (``HybridConfig`` and its sections ``CallDefaults``, ``EncoderSettings``,
``ErrorConfig``), ``_async`` (``AsyncHybridPixelLLM``: the real methods, as coroutines),
``hybrid`` (``HybridPixelLLM``: its blocking facade, one line per method, plus the original
``*_async`` names), ``_status`` (``PipelineHealth``, ``PipelineMetrics``), ``_core`` (the async
pipeline of one caption, calling its collaborators through :mod:`pixel_llm_otel.protocols`),
``_batch`` (batches), ``_prompt`` (argument checks and messages), ``_cache_key`` (fallback-cache
keys), ``result`` (``GenerateResult``, ``StreamResult``), ``_stream``
(``AsyncCaptionStream``: one streamed caption), ``_stream_open`` (retry until the first chunk),
``_stream_sync`` (``CaptionStream``, the blocking face; streams open at exit).
"""

from __future__ import annotations

from ._async import AsyncHybridPixelLLM
from ._cache_key import CacheKey, cache_key, image_digest
from ._core import Encoded
from ._prompt import DEFAULT_PROMPT
from ._status import PipelineHealth, PipelineMetrics
from ._stream import AsyncCaptionStream
from ._stream_sync import CaptionStream
from .config import (
    DEFAULT_MODEL,
    DEFAULT_URL,
    CallDefaults,
    EncoderSettings,
    ErrorConfig,
    HybridConfig,
)
from .hybrid import HybridPixelLLM
from .result import GenerateResult, Source, StreamResult, Usage

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PROMPT",
    "DEFAULT_URL",
    "AsyncCaptionStream",
    "AsyncHybridPixelLLM",
    "CacheKey",
    "CallDefaults",
    "CaptionStream",
    "Encoded",
    "EncoderSettings",
    "ErrorConfig",
    "GenerateResult",
    "HybridConfig",
    "HybridPixelLLM",
    "PipelineHealth",
    "PipelineMetrics",
    "Source",
    "StreamResult",
    "Usage",
    "cache_key",
    "image_digest",
]
