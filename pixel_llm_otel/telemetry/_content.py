"""Opt-in capture of chat content as ``gen_ai.input.messages`` / ``gen_ai.output.messages``.

Off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true (or the instrumentor is
given ``capture_content=True``). Messages follow the semconv shape (``role`` plus typed
``parts``); only text is kept: an image or other binary part is recorded by its type alone, never
its data. Each attribute is bounded: text parts are cut to a share of the budget and the JSON as a
whole never exceeds ``max_chars``, with a truncation marker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _names as n

__all__ = ["DEFAULT_MAX_CHARS", "ContentPolicy", "capture_enabled_from_env"]

DEFAULT_MAX_CHARS = 4096
_TRUE = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})


def capture_enabled_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` opts in."""
    return os.environ.get(n.ENV_CAPTURE_CONTENT, "").strip().lower() in _TRUE


def _marker(dropped: int) -> str:
    return f"...[truncated {dropped} chars]"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = _marker(len(text) - limit)
    return text[: max(0, limit - len(marker))] + marker


def _parts(content: Any, limit: int) -> list[dict[str, str]]:
    if isinstance(content, str):
        return [{"type": "text", "content": _cut(content, limit)}]
    parts: list[dict[str, str]] = []
    if isinstance(content, Sequence):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append({"type": "text", "content": _cut(str(part.get("text", "")), limit)})
            elif isinstance(part, Mapping):
                parts.append({"type": str(part.get("type", "unknown"))})  # never the data
    return parts


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """Whether to capture content, and how much of it."""

    enabled: bool = False
    max_chars: int = DEFAULT_MAX_CHARS

    def _bounded(self, value: list[dict[str, Any]]) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return _cut(text, self.max_chars)

    def input_messages(self, messages: Sequence[Mapping[str, Any]]) -> str | None:
        """The ``gen_ai.input.messages`` value, or ``None`` when capture is off or empty."""
        if not self.enabled or not messages:
            return None
        share = max(64, self.max_chars // max(1, len(messages)))
        value = [
            {"role": str(m.get("role", "user")), "parts": _parts(m.get("content"), share)}
            for m in messages
        ]
        return self._bounded(value)

    def output_messages(self, text: str | None, finish_reasons: Sequence[str]) -> str | None:
        """The ``gen_ai.output.messages`` value, or ``None`` when capture is off or no text."""
        if not self.enabled or text is None:
            return None
        message: dict[str, Any] = {"role": "assistant", "parts": _parts(text, self.max_chars)}
        if finish_reasons:
            message["finish_reason"] = finish_reasons[0]
        return self._bounded([message])
