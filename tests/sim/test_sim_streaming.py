"""SSE streaming: chunk shapes, [DONE], usage chunk, text reassembly, slow streaming."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.sim import FaultSpec, RecordingSleep, SimulatorServer, reply_text


async def read_events(resp: aiohttp.ClientResponse) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order."""
    events = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line:
            assert line.startswith("data: "), line
            events.append(line[len("data: ") :])
    return events


async def stream(session: aiohttp.ClientSession, sim: SimulatorServer, **extra: Any) -> list[str]:
    async with session.post(
        sim.base_url + CHAT, json=chat_body("stream me", stream=True, **extra)
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        return await read_events(resp)


async def test_stream_ends_with_done_and_reassembles(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """Chunks carry the role first, then the words; joined they equal the non-streamed reply."""
    events = await stream(session, sim)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == reply_text("sim-model", chat_body("stream me")["messages"])
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert chunks[0]["id"].startswith("chatcmpl-")


async def test_stream_chunk_shape_and_final_finish_reason(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """Every chunk is a chat.completion.chunk; only the last has a finish_reason and no usage."""
    chunks = [json.loads(e) for e in (await stream(session, sim))[:-1]]
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["model"] == "sim-model"
        assert set(c) == {"id", "object", "created", "model", "system_fingerprint", "choices"}
        assert set(c["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}
    assert [c["choices"][0]["finish_reason"] for c in chunks[-2:]] == [None, "stop"]
    assert chunks[-1]["choices"][0]["delta"] == {}


async def test_stream_usage_chunk_when_requested(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """With include_usage, chunks carry usage null and a last chunk has empty choices and usage."""
    events = await stream(session, sim, stream_options={"include_usage": True})
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    words = len(reply_text("sim-model", chat_body("stream me")["messages"]).split())
    assert last["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": words,
        "total_tokens": 2 + words,
    }


@pytest.mark.parametrize("max_tokens", [0, 2], ids=["zero", "two"])
async def test_stream_respects_max_tokens(
    sim: SimulatorServer, session: aiohttp.ClientSession, max_tokens: int
) -> None:
    """A streamed reply stops at max_tokens words with finish_reason length."""
    chunks = [json.loads(e) for e in (await stream(session, sim, max_tokens=max_tokens))[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert len(text.split()) == max_tokens
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_slow_streaming_sleeps_between_chunks(
    session: aiohttp.ClientSession,
) -> None:
    """stream_chunk_delay sleeps once between each pair of chunks (not before the first)."""
    sleep = RecordingSleep()
    async with SimulatorServer(scenario=FaultSpec(stream_chunk_delay=0.25), sleep=sleep) as sim:
        events = await stream(session, sim)
    assert sleep.calls == [0.25] * (len(events) - 2)


async def test_slow_streaming_really_spaces_chunks(session: aiohttp.ClientSession) -> None:
    """With the real sleep, a 5 ms chunk delay makes the stream take at least that per gap."""
    import time

    async with SimulatorServer(scenario=FaultSpec(stream_chunk_delay=0.005)) as sim:
        started = time.monotonic()
        events = await stream(session, sim, max_tokens=3)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.005 * (len(events) - 2)
