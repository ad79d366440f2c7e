"""Each fault kind produces what it says, over real HTTP; scripts are consumed in order."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.sim import FaultKind, FaultSpec, Latency, RecordingSleep, SimulatorServer

SERVER_ERRORS = [("500", 500), ("502", 502), ("503", 503), ("504", 504)]


@pytest.mark.parametrize(("kind", "status"), SERVER_ERRORS, ids=[k for k, _ in SERVER_ERRORS])
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_server_errors_have_status_and_openai_body(
    sim: SimulatorServer, session: aiohttp.ClientSession, kind: str, status: int, streaming: bool
) -> None:
    """A scripted 5xx answers with that status and a server_error body, streaming or not."""
    sim.script([kind])
    async with session.post(sim.base_url + CHAT, json=chat_body(stream=streaming)) as resp:
        assert resp.status == status
        body = await resp.json()
    assert body["error"]["type"] == "server_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert sim.stats().count("/v1/chat/completions", kind) == 1


async def test_rate_limit_sends_retry_after(session: aiohttp.ClientSession) -> None:
    """A 429 carries Retry-After with the spec's seconds and a rate_limit_exceeded code."""
    async with SimulatorServer(scenario=FaultSpec(retry_after=2.5)) as sim:
        sim.script(["429"])
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "2.5"
            body = await resp.json()
    assert body["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_reset_cuts_the_body(
    sim: SimulatorServer, session: aiohttp.ClientSession, streaming: bool
) -> None:
    """A reset sends 200 and part of the body, then drops the connection: the read fails."""
    sim.script(["reset"])
    async with session.post(sim.base_url + CHAT, json=chat_body(stream=streaming)) as resp:
        assert resp.status == 200
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
            await resp.read()


async def test_hang_times_the_client_out(session: aiohttp.ClientSession) -> None:
    """A hang never answers: the client's timeout fires, and the server is free afterwards."""
    async with SimulatorServer() as sim:
        sim.script(["hang"])
        with pytest.raises(asyncio.TimeoutError):
            await session.post(
                sim.base_url + CHAT, json=chat_body(), timeout=aiohttp.ClientTimeout(total=0.05)
            )
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            assert resp.status == 200
        assert sim.stats().by_outcome == {"hang": 1, "ok": 1}


async def test_hang_drops_the_connection_after_hang_seconds(
    session: aiohttp.ClientSession,
) -> None:
    """After hang_seconds (on the injected sleep) the connection closes with no response."""
    sleep = RecordingSleep()
    async with SimulatorServer(scenario=FaultSpec(hang_seconds=7.0), sleep=sleep) as sim:
        sim.script(["hang"])
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.post(sim.base_url + CHAT, json=chat_body())
    assert sleep.calls == [7.0]


async def test_malformed_json_is_not_json(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """malformed_json answers 200 application/json whose body does not parse."""
    sim.script(["malformed_json"])
    async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        text = await resp.text()
    assert text.startswith('{"id": "chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_malformed_stream_chunk(sim: SimulatorServer, session: aiohttp.ClientSession) -> None:
    """In a stream, malformed_json makes one data line unparseable, still ending with [DONE]."""
    sim.script(["malformed_json"])
    async with session.post(sim.base_url + CHAT, json=chat_body(stream=True)) as resp:
        lines = [ln.decode().strip() for ln in [raw async for raw in resp.content]]
    data = [ln[len("data: ") :] for ln in lines if ln]
    assert data[-1] == "[DONE]"
    bad = []
    for item in data[:-1]:
        try:
            json.loads(item)
        except json.JSONDecodeError:
            bad.append(item)
    assert len(bad) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_empty_choices(
    sim: SimulatorServer, session: aiohttp.ClientSession, streaming: bool
) -> None:
    """empty_choices answers a well-formed 200 whose choices are all empty."""
    sim.script(["empty_choices"])
    async with session.post(sim.base_url + CHAT, json=chat_body(stream=streaming)) as resp:
        assert resp.status == 200
        if streaming:
            data = [r.decode().strip()[6:] async for r in resp.content if r.strip()]
            assert data[-1] == "[DONE]"
            bodies = [json.loads(d) for d in data[:-1]]
        else:
            bodies = [await resp.json()]
    assert bodies
    assert all(b["choices"] == [] for b in bodies)


async def test_script_consumed_in_order_then_rates(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """A script forces the next requests in order; afterwards the (healthy) rates apply."""
    assert sim.script(["503", "503", "429", FaultKind.OK]) == 4
    statuses = []
    for _ in range(6):
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            statuses.append(resp.status)
    assert statuses == [503, 503, 429, 200, 200, 200]
    assert sim.stats().script_remaining == 0


async def test_script_append_and_replace(sim: SimulatorServer) -> None:
    """script() replaces the queue unless append=True; bad steps raise ValidationError."""
    from pixel_llm_otel.errors import ValidationError

    assert sim.script(["503"]) == 1
    assert sim.script(["500", "ok"], append=True) == 3
    assert sim.script(["ok"]) == 1
    with pytest.raises(ValidationError, match="script"):
        sim.script(["418"])


async def test_models_endpoint_ignores_script(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """Scripts and rates apply to chat completions only; /v1/models stays healthy."""
    sim.script(["503"])
    async with session.get(sim.base_url + "/models") as resp:
        assert resp.status == 200
    assert sim.stats().script_remaining == 1


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (Latency.fixed(0.3), [0.3, 0.3]),
        (Latency.uniform(0.1, 0.2), None),
    ],
    ids=["fixed", "uniform"],
)
async def test_latency_is_slept_before_answering(
    session: aiohttp.ClientSession, latency: Latency, expected: list[float] | None
) -> None:
    """Added latency goes through the injected sleep, once per chat request, within bounds."""
    sleep = RecordingSleep()
    async with SimulatorServer(scenario=FaultSpec(latency=latency), sleep=sleep, seed=3) as sim:
        for streaming in (False, True):
            body = chat_body(stream=streaming)
            async with session.post(sim.base_url + CHAT, json=body) as resp:
                assert resp.status == 200
                await resp.read()
    if expected is not None:
        assert sleep.calls == expected
    else:
        assert len(sleep.calls) == 2
        assert all(0.1 <= c <= 0.2 for c in sleep.calls)


async def test_script_step_latency_overrides_spec(session: aiohttp.ClientSession) -> None:
    """A script step's own latency replaces the spec's latency for that request."""
    sleep = RecordingSleep()
    async with SimulatorServer(scenario=FaultSpec(latency=Latency.fixed(1.0)), sleep=sleep) as sim:
        sim.script([{"kind": "ok", "latency": 0.05}, "ok"])
        for _ in range(2):
            async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
                assert resp.status == 200
    assert sleep.calls == [0.05, 1.0]


async def test_real_latency_delays_the_answer(session: aiohttp.ClientSession) -> None:
    """With the real sleep, 20 ms of fixed latency delays the answer by at least that."""
    import time

    async with SimulatorServer(scenario=FaultSpec(latency=Latency.fixed(0.02))) as sim:
        started = time.monotonic()
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            assert resp.status == 200
        assert time.monotonic() - started >= 0.02
