"""The streamed (SSE) answer of ``/v1/chat/completions`` and its stream faults.

A healthy stream is the role chunk, one chunk per word, the finish chunk, the usage chunk when
``stream_options.include_usage`` asks for it (and the spec honours it), then ``data: [DONE]``.
The faults count the SSE events already sent (``after``): a stall holds the stream silent, a reset
drops the connection, a malformed event is written in place of the next one, a truncated stream
ends cleanly without ``[DONE]``; an empty stream sends the headers and ends (what llama.cpp does
on a context overflow); a slow first chunk waits after the headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import openai_shapes as shapes
from .faults import FaultKind, FaultSpec
from .state import Decision

__all__ = ["MALFORMED_EVENT", "stream_answer"]

#: What a malformed event looks like on the wire (JSON cut in the middle).
MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n'

SleepFn = Callable[[float], Awaitable[Any]]
DropFn = Callable[[web.BaseRequest], None]


async def stream_answer(
    request: web.Request,
    chat: shapes.ChatRequest,
    decision: Decision,
    spec: FaultSpec,
    sleep: SleepFn,
    drop: DropFn,
) -> web.StreamResponse:
    """Write the SSE answer for ``decision`` (any kind that reaches a 200)."""
    kind = decision.kind
    chunks = shapes.stream_chunks(chat, empty_choices=kind is FaultKind.EMPTY_CHOICES)
    if not spec.stream_usage and chat.include_usage:
        chunks = [c for c in chunks if c.get("usage") is None]  # llama.cpp: no usage chunk
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    after = decision.after if decision.after is not None else spec.stream_fault_after
    if kind is FaultKind.STREAM_EMPTY:
        await response.write_eof()
        return response
    if kind is FaultKind.SLOW_FIRST_CHUNK:
        await sleep(_seconds(decision, spec.first_chunk_delay))
    for index, item in enumerate(chunks):
        if index and spec.stream_chunk_delay > 0:
            await sleep(spec.stream_chunk_delay)
        if (kind is FaultKind.RESET and index == 2) or (
            kind is FaultKind.STREAM_RESET and index == after
        ):
            drop(request)
            return response
        if kind is FaultKind.STREAM_TRUNCATED and index == after:
            await response.write_eof()
            return response
        if kind is FaultKind.STREAM_STALL and index == after:
            await sleep(_seconds(decision, spec.stream_stall_seconds))
        if (kind is FaultKind.MALFORMED_JSON and index == 1) or (
            kind is FaultKind.STREAM_MALFORMED and index == after
        ):
            await response.write(MALFORMED_EVENT)
            continue
        await response.write(shapes.sse(item))
    # a reset or truncation meant after the last event still strikes before [DONE]
    if kind is FaultKind.STREAM_RESET:
        drop(request)
        return response
    if kind is FaultKind.STREAM_TRUNCATED:
        await response.write_eof()
        return response
    await response.write(shapes.sse("[DONE]"))
    await response.write_eof()
    return response


def _seconds(decision: Decision, default: float) -> float:
    return decision.seconds if decision.seconds is not None else default
