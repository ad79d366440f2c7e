"""``GenerateResult`` (one generate call) and ``StreamResult`` (one streamed caption): what was
produced, where it came from, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["GenerateResult", "Source", "StreamResult", "Usage"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamResult:
    """How a streamed caption ended (the ``generate_result`` fields, plus the stream's own).

    Attributes:
        text: everything yielded, joined (the fallback's text when one served), or ``None``
            when nothing was.
        source: ``"llm"``, a fallback strategy, or ``None`` when nothing served.
        attempts: HTTP attempts made before the first chunk (0: refused or nothing tried).
        usage: token usage from the server's final usage chunk; ``None`` when it sent none
            (never estimated).
        finish_reason: the server's finish reason (``None`` unless the stream completed).
        error: the error that ended the stream or forced the fallback, else ``None``.
        trace_id: the W3C trace id of the stream's ``pixel_llm.generate`` span, when traced.
        latency: seconds from the first step to the end.
        end: ``completed``, ``closed``, ``cancelled``, ``interrupted`` or ``abandoned``.
        chunks: how many chunks the caller was given.
        time_to_first_chunk: seconds from the first step (encoding included) to the first chunk
            the caller got, or ``None`` when it got none.
    """

    text: str | None
    source: Source | None
    attempts: int = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    error: BaseException | None = field(default=None, compare=False)
    trace_id: str | None = None
    latency: float = 0.0
    end: str = "completed"
    chunks: int = 0
    time_to_first_chunk: float | None = None

    @property
    def ok(self) -> bool:
        """True when the stream completed with text (from the LLM or a fallback)."""
        return self.end == "completed" and self.text is not None

    @property
    def outcome(self) -> str:
        """As ``GenerateResult.outcome`` (``pixel_llm.outcome``): an interrupted stream is an
        ``"error"``; one the caller stopped early is a ``"success"`` (it got what it read)."""
        if self.end == "interrupted" or self.text is None:
            return "error"
        return "success" if self.source == "llm" else "fallback"
