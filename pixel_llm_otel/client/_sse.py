"""Server-sent events: split a byte stream into ``data`` payloads; collect chunks into one reply."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from ..errors import APIError, ErrorCode
from ._types import ChatCompletion, ChatMessage, Choice, StreamChunk, Usage

__all__ = ["DONE", "collect_stream", "iter_sse_data"]

#: The payload that ends an OpenAI stream.
DONE = "[DONE]"


async def iter_sse_data(lines: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Yield the ``data`` of each event in an SSE stream given as lines.

    Multi-line data fields are joined with ``\\n``; comments and other fields (``event``, ``id``,
    ``retry``) are skipped. A final event not followed by a blank line is still yielded.
    """
    data: list[str] = []
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


async def collect_stream(chunks: AsyncIterable[StreamChunk]) -> ChatCompletion:
    """Reassemble a streamed chat completion: content concatenated per choice, the last
    ``finish_reason`` and ``usage`` seen, ``id`` / ``model`` / ``created`` of the first chunk.

    Raises:
        APIError: ``ERR_RESPONSE_INVALID`` when the stream held no choice at all.
    """
    first: StreamChunk | None = None
    usage: Usage | None = None
    roles: dict[int, str] = {}
    parts: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    async for chunk in chunks:
        if first is None:
            first = chunk
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            parts.setdefault(choice.index, [])
            finish.setdefault(choice.index, None)
            if choice.role is not None:
                roles[choice.index] = choice.role
            if choice.content:
                parts[choice.index].append(choice.content)
            if choice.finish_reason is not None:
                finish[choice.index] = choice.finish_reason
    if first is None or not parts:
        raise APIError(
            "the stream ended without any choice",
            code=ErrorCode.RESPONSE_INVALID,
            context={"stream": True},
        )
    choices = tuple(
        Choice(
            index=index,
            message=ChatMessage(role=roles.get(index, "assistant"), content="".join(parts[index])),
            finish_reason=finish[index],
        )
        for index in sorted(parts)
    )
    return ChatCompletion(
        id=first.id, model=first.model, created=first.created, choices=choices, usage=usage
    )
