"""Opening a streamed caption: retry(open the HTTP stream and read to its first content chunk).

Everything before the first content chunk is one ordinary attempt: a failure there (connect,
status, an empty event stream, a stream cut before ``[DONE]``, a bad first event, a stream of
chunks without any choice) is raised inside the attempt and retried like a non-streamed call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import APIError, ErrorCode
from ._prompt import CallOptions
from .result import Usage

if TYPE_CHECKING:
    from ..client import Usage as WireUsage

if TYPE_CHECKING:
    from ..client import StreamChunk
    from ._core import PipelineCore

__all__ = ["Facts", "open_stream", "stream_budget"]


class _Attempts(Protocol):
    """Where :func:`open_stream` counts attempts and leaves the current attempt's facts."""

    attempts: int
    facts: Facts


class Facts:
    """What the chunks said: ids, finish reason, usage (filled as they arrive)."""

    __slots__ = ("finish_reason", "reported", "response_id", "response_model", "usage")

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        # the usage chunk as the server sent it (token details included), for telemetry
        self.reported: WireUsage | None = None

    def absorb(self, chunk: StreamChunk) -> None:
        if self.response_id is None:
            self.response_id = chunk.id
            self.response_model = chunk.model
        for choice in chunk.choices:
            if choice.index == 0 and choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        usage = chunk.usage
        if usage is not None:
            self.reported = usage
            self.usage = Usage(
                input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
            )


def _no_content_error() -> APIError:
    """A stream whose chunks held no choice at all (what empty choices look like streamed)."""
    return APIError(
        "the stream ended without any choice", code=ErrorCode.RESPONSE_INVALID, status=200
    )


def stream_budget(core: PipelineCore, options: CallOptions) -> float | None:
    """Seconds the whole stream may take: the call's ``deadline``, else the retry deadline."""
    if options.deadline is not None:
        return options.deadline
    deadline = core.retry.config.deadline
    if deadline is None:
        return None
    return deadline.total_seconds() if isinstance(deadline, timedelta) else float(deadline)


async def open_stream(
    core: PipelineCore,
    messages: list[Mapping[str, Any]],
    options: CallOptions,
    stream: _Attempts,
    *,
    idle_timeout: float | None,
    deadline: float | None,
) -> tuple[AsyncIterator[StreamChunk] | None, str | None]:
    """Retry(open the HTTP stream and read to its first content chunk).

    Returns the chunk iterator positioned after that chunk and its text, or ``(None, None)`` for
    a stream that completed with choices but no content. Every failure before content is an
    ordinary attempt failure (retried when retryable); a failed attempt's response is closed.
    """
    state = core._state()
    client = state.client
    model = core.config.lm_studio_model
    loop = asyncio.get_running_loop()

    async def attempt() -> tuple[AsyncIterator[StreamChunk] | None, str | None]:
        stream.attempts += 1
        facts = stream.facts = Facts()
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        chunks = client.stream_chat(
            messages,
            model=model,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            idle_timeout=idle_timeout,
            timeout=remaining,
        )
        choices = False
        try:
            async for chunk in chunks:
                facts.absorb(chunk)
                choices = choices or bool(chunk.choices)
                text = chunk.text
                if text:
                    return chunks, text
        except BaseException:
            await chunks.aclose()
            raise
        if not choices:
            raise _no_content_error()
        return None, None

    slots = state.slots
    if not slots.try_acquire():
        await slots.acquire()  # bounds concurrent stream openings like generate calls
    try:
        budget = None if deadline is None else max(deadline - loop.time(), 1e-3)
        return await core.retry.run_async(attempt, deadline=budget)
    finally:
        slots.release()
