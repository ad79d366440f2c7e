"""Reading one SSE chat stream: idle timeout, overall deadline, typed endings.

:class:`ChunkReader` turns the ``data`` payloads of a response into :class:`StreamChunk` s and
decides how the stream ends:

=====================================================  ========================================
what happened                                          raised
=====================================================  ========================================
``data: [DONE]``                                       nothing: the stream is complete
no event for ``idle_timeout`` seconds                  ``TimeoutError`` ``ERR_TIMEOUT_READ``
the overall deadline passed                            ``TimeoutError`` ``ERR_TIMEOUT_TOTAL``
the body ended with no event at all (llama.cpp's 200   ``APIError`` ``ERR_RESPONSE_INVALID``
on a context overflow)
the body ended (or was reset) before ``[DONE]``        ``ConnectionError`` ``ERR_CONNECTION_RESET``
an event that is not JSON / not a chunk                ``APIError`` ``ERR_RESPONSE_MALFORMED`` /
                                                       ``ERR_RESPONSE_INVALID``
=====================================================  ========================================

Those are the ordinary, retryable errors while no content has been delivered. Once a chunk with
content has been yielded, any of them is raised as :class:`StreamInterrupted`
(``ERR_STREAM_INTERRUPTED``, not retryable) with the original chained: the caller has text that
cannot be taken back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import APIError, ConnectionError, ErrorCode, PixelLMError, StreamInterrupted
from ..errors import TimeoutError as PixelTimeoutError
from ._inbound import LimitedLines
from ._sse import DONE, SSEDecoder
from ._types import StreamChunk

__all__ = ["ChunkReader", "StreamProgress", "interruption", "timeout_error"]

DecodeFn = Callable[[bytes], StreamChunk]


class StreamProgress:
    """What a stream has delivered so far (shared with the caller for error reporting)."""

    __slots__ = ("chunks", "content_chunks", "events")

    def __init__(self) -> None:
        self.events = 0  # data events read, [DONE] excluded
        self.chunks = 0  # chunks yielded
        self.content_chunks = 0  # chunks yielded that carried content

    @property
    def started(self) -> bool:
        """Whether content has been delivered (from then on failures are interruptions)."""
        return self.content_chunks > 0


def interruption(
    exc: PixelLMError, progress: StreamProgress, ctx: Mapping[str, Any]
) -> PixelLMError:
    """``exc`` as the stream's ending: a :class:`StreamInterrupted` once content was delivered."""
    if progress.started and not isinstance(exc, StreamInterrupted):
        return StreamInterrupted(chunks=progress.content_chunks, cause=exc, context=ctx)
    return exc


class ChunkReader:
    """Async iterator over the chunks of ``lines`` until ``[DONE]``; the typed ending otherwise.

    Each network read's whole lines are split into events at once (:class:`SSEDecoder`); the
    chunks are then handed out one per ``__anext__`` without awaiting anything.

    The timers are aiohttp's, set on the request by the caller: ``sock_read`` = the idle
    timeout (bounds every wait for the next bytes), ``total`` = the stream's budget (fires at
    ``deadline``, a time on the loop's clock); no timer of its own per event, which would cost a
    scheduled callback per chunk. A timeout is typed by the clock: ``ERR_TIMEOUT_TOTAL`` once
    the deadline has passed, ``ERR_TIMEOUT_READ`` otherwise. Errors are the ordinary ones: the
    caller turns them into :class:`StreamInterrupted` with :func:`interruption` once
    ``progress.started``. A class, not a generator, so nothing is left suspended when the caller
    stops early.
    """

    __slots__ = (
        "_ctx",
        "_deadline",
        "_decode",
        "_idle",
        "_lines",
        "_loop",
        "_pending",
        "_progress",
        "_sse",
    )

    def __init__(
        self,
        lines: LimitedLines,
        decode: DecodeFn,
        ctx: Mapping[str, Any],
        progress: StreamProgress,
        *,
        idle_timeout: float | None,
        deadline: float | None,
    ) -> None:
        self._lines = lines
        self._sse = SSEDecoder()
        self._pending: deque[bytes] = deque()
        self._decode = decode
        self._ctx = ctx
        self._progress = progress
        self._idle = idle_timeout
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()

    def __aiter__(self) -> ChunkReader:
        return self

    async def __anext__(self) -> StreamChunk:
        pending = self._pending
        while not pending:
            try:
                block = await self._lines.read()
            except (asyncio.TimeoutError, TimeoutError) as exc:
                if isinstance(exc, PixelLMError):
                    raise
                now = self._loop.time()
                raise timeout_error(now, self._deadline, self._idle, self._ctx, exc) from exc
            if block:
                pending.extend(self._sse.feed(block if block[-1:] == b"\n" else block + b"\n"))
                continue
            pending.extend(self._sse.finish())
            if not pending:
                raise self._ended()
        data = pending.popleft()
        if data == DONE:
            raise StopAsyncIteration
        progress = self._progress
        progress.events += 1
        chunk = self._decode(data)
        progress.chunks += 1
        for choice in chunk.choices:
            if choice.content:
                progress.content_chunks += 1
                break
        return chunk

    def _ended(self) -> PixelLMError:
        if self._progress.events == 0:
            return APIError(
                "the event stream ended without any event (llama.cpp does this when the prompt "
                "overflows the context)",
                status=200,
                code=ErrorCode.RESPONSE_INVALID,
                context=self._ctx,
            )
        return ConnectionError(
            "the stream ended before data: [DONE]",
            code=ErrorCode.CONNECTION_RESET,
            context=self._ctx,
        )


def timeout_error(
    now: float,
    deadline: float | None,
    idle_timeout: float | None,
    ctx: Mapping[str, Any],
    exc: BaseException,
) -> PixelTimeoutError:
    """The typed timeout: ``ERR_TIMEOUT_TOTAL`` once the deadline passed, else the idle one."""
    if deadline is not None and now >= deadline - _SLACK:
        return PixelTimeoutError(
            "the stream's overall deadline passed",
            code=ErrorCode.TIMEOUT_TOTAL,
            context=ctx,
            cause=exc,
        )
    return PixelTimeoutError(
        f"no stream event within the idle timeout ({idle_timeout}s)",
        code=ErrorCode.TIMEOUT_READ,
        context={**ctx, "idle_timeout_s": idle_timeout},
        cause=exc,
    )


#: Timers fire a little early or late; within this of the deadline, the deadline it was.
_SLACK = 0.005
