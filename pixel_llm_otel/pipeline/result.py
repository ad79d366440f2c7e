"""``GenerateResult``: what one generate call produced, where it came from, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["GenerateResult", "Source", "Usage"]

#: Where the text came from: the LLM, one of the fallback strategies, or nowhere (``None``).
Source = Literal["llm", "cache", "default", "custom"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts reported by the server (``None`` when it reported none)."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateResult:
    """The outcome of one image's caption.

    Attributes:
        text: the caption, or ``None`` when nothing could be produced.
        source: ``"llm"``; ``"cache"``, ``"default"`` or ``"custom"`` when a fallback served;
            ``None`` when nothing served.
        attempts: HTTP attempts made (0 when the breaker refused or nothing was tried).
        usage: token usage of the successful LLM answer, else ``None``.
        error: the error behind a fallback or a failure, else ``None``.
        trace_id: the W3C trace id of the ``pixel_llm.generate`` span when tracing is on.
        latency: seconds the call took, encode included (a batch item: its share, see
            ``generate_batch``).
    """

    text: str | None
    source: Source | None
    attempts: int = 0
    usage: Usage | None = None
    error: BaseException | None = field(default=None, compare=False)
    trace_id: str | None = None
    latency: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the caller got text (from the LLM or a fallback)."""
        return self.text is not None

    @property
    def outcome(self) -> str:
        """``"success"`` (LLM), ``"fallback"`` (a fallback served) or ``"error"`` (no text)."""
        if self.source == "llm":
            return "success"
        return "fallback" if self.source is not None else "error"
