"""The OpenAI-compatible HTTP client: :class:`LMStudioClient` (async, aiohttp) and its blocking
facade :class:`SyncLMStudioClient`. One request per call; no retries here."""

from __future__ import annotations

from ._async import HealthStatus, LMStudioClient
from ._config import DEFAULT_BASE_URL, ClientConfig
from ._sse import collect_stream
from ._sync import SyncLMStudioClient
from ._types import (
    ChatCompletion,
    ChatMessage,
    Choice,
    StreamChoice,
    StreamChunk,
    Usage,
    extract_error_message,
    parse_chat_completion,
    parse_stream_chunk,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "ClientConfig",
    "HealthStatus",
    "LMStudioClient",
    "StreamChoice",
    "StreamChunk",
    "SyncLMStudioClient",
    "Usage",
    "collect_stream",
    "extract_error_message",
    "parse_chat_completion",
    "parse_stream_chunk",
]
