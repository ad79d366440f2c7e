"""Server-sent events: split a byte stream into ``data`` payloads; collect chunks into one reply."""

from __future__ import annotations

from collections.abc import AsyncIterable

from ..errors import APIError, ErrorCode
from ._types import ChatCompletion, ChatMessage, Choice, StreamChunk, Usage

__all__ = ["DONE", "SSEDecoder", "collect_stream"]

#: The payload that ends an OpenAI stream.
DONE = b"[DONE]"


class SSEDecoder:
    """Turns whole lines of an SSE stream into the ``data`` of each event, a block at a time.

    Fed blocks of complete lines (each ending in ``\\n``, as many as arrived), it returns the
    payloads of the events they complete: multi-line data fields joined with ``\\n``; comments
    and other fields (``event``, ``id``, ``retry``) skipped. :meth:`finish` returns a final event
    not followed by a blank line. Splitting a block costs one ``bytes.split``, not an await and a
    generator step per line.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[bytes] = []

    def feed(self, block: bytes) -> list[bytes]:
        """The payloads of the events completed by ``block`` (whole lines, ``\\n``-terminated).

        Raises ``UnicodeDecodeError`` when ``block`` is not UTF-8 (checked once per block).
        """
        block.decode("utf-8")  # the stream must be UTF-8; one C pass per block validates it
        events: list[bytes] = []
        data = self._data
        lines = block.split(b"\n")
        lines.pop()  # after the block's final newline
        for line in lines:
            if line.startswith(b"data: "):  # the common case first
                data.append(line[6:].rstrip(b"\r"))
                continue
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = self._data = []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if name == b"data":
                data.append(value[1:] if value.startswith(b" ") else value)
        return events

    def finish(self) -> list[bytes]:
        """The payload of a final event the stream did not end with a blank line, if any."""
        data, self._data = self._data, []
        return [b"\n".join(data)] if data else []


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
