"""Stream faults: stall, reset after N events, bad event, no [DONE], empty, slow first chunk."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.sim import FaultKind, FaultSpec, RecordingSleep, ScriptStep, SimulatorServer
from pixel_llm_otel.sim.app import CHAT_PATH


async def read_raw(resp: aiohttp.ClientResponse) -> tuple[list[str], BaseException | None]:
    """The ``data:`` payloads read before the stream ended, and the error that ended it if any."""
    events: list[str] = []
    try:
        async for raw in resp.content:
            line = raw.decode().strip()
            if line:
                events.append(line.removeprefix("data: "))
    except aiohttp.ClientPayloadError as exc:
        return events, exc
    return events, None


async def script(session: aiohttp.ClientSession, sim: SimulatorServer, *steps: Any) -> None:
    """Queue ``steps`` through the admin API, as an operator would."""
    async with session.post(sim.admin_url + "/script", json={"steps": list(steps)}) as resp:
        assert resp.status == 200, await resp.text()


async def stream(
    session: aiohttp.ClientSession, sim: SimulatorServer, **extra: Any
) -> tuple[list[str], BaseException | None]:
    async with session.post(
        sim.base_url + CHAT, json=chat_body("stream me", stream=True, **extra)
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        return await read_raw(resp)


async def healthy_events(session: aiohttp.ClientSession, sim: SimulatorServer) -> list[str]:
    events, error = await stream(session, sim)
    assert error is None
    return events


@pytest.mark.parametrize("after", [1, 3], ids=["after-role", "after-two-words"])
async def test_stream_reset_drops_the_connection_after_n_events(
    sim: SimulatorServer, session: aiohttp.ClientSession, after: int
) -> None:
    """stream_reset sends exactly ``after`` events, then the body ends in a payload error."""
    await script(session, sim, {"kind": "stream_reset", "after": after})
    events, error = await stream(session, sim)
    assert len(events) == after
    assert "[DONE]" not in events
    assert isinstance(error, aiohttp.ClientPayloadError)
    assert sim.stats().count(CHAT_PATH, FaultKind.STREAM_RESET) == 1


async def test_stream_truncated_ends_cleanly_without_done(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """stream_truncated ends the body cleanly after N events, with no [DONE]."""
    await script(session, sim, {"kind": "stream_truncated", "after": 2})
    events, error = await stream(session, sim)
    assert error is None
    assert len(events) == 2
    assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events)


async def test_stream_truncated_past_the_end_still_omits_done(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """An ``after`` past the last chunk sends every chunk but still no [DONE]."""
    full = await healthy_events(session, sim)
    await script(session, sim, {"kind": "stream_truncated", "after": 99})
    events, error = await stream(session, sim)
    assert error is None
    assert [json.loads(e)["choices"] for e in events] == [
        json.loads(e)["choices"] for e in full[:-1]
    ]


async def test_stream_malformed_event_then_the_rest(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """stream_malformed puts an unparseable event at position N and still ends with [DONE]."""
    full = await healthy_events(session, sim)
    await script(session, sim, {"kind": "stream_malformed", "after": 2})
    events, error = await stream(session, sim)
    assert error is None
    assert events[-1] == "[DONE]"
    assert len(events) == len(full)
    with pytest.raises(ValueError):
        json.loads(events[2])
    for ok in events[:2] + events[3:-1]:
        json.loads(ok)


async def test_stream_empty_is_200_with_no_event(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """stream_empty answers 200 text/event-stream and ends with no event at all (llama.cpp)."""
    await script(session, sim, "stream_empty")
    events, error = await stream(session, sim)
    assert (events, error) == ([], None)


async def test_stream_stall_holds_the_stream_then_finishes(
    sim: SimulatorServer, session: aiohttp.ClientSession, fake_sleep: RecordingSleep
) -> None:
    """stream_stall sleeps ``seconds`` once, after N events, and the stream then completes."""
    full = await healthy_events(session, sim)
    await script(session, sim, {"kind": "stream_stall", "after": 2, "seconds": 7.5})
    events, error = await stream(session, sim)
    assert error is None
    assert fake_sleep.calls == [7.5]
    assert len(events) == len(full)
    assert events[-1] == "[DONE]"


async def test_stream_stall_uses_the_spec_seconds_by_default(
    session: aiohttp.ClientSession,
) -> None:
    """Without a step value the stall lasts the spec's stream_stall_seconds."""
    sleep = RecordingSleep()
    spec = FaultSpec(rates={FaultKind.STREAM_STALL: 1.0}, stream_stall_seconds=4.0)
    async with SimulatorServer(scenario=spec, sleep=sleep) as sim:
        events, error = await stream(session, sim)
    assert error is None
    assert events[-1] == "[DONE]"
    assert sleep.calls == [4.0]


async def test_slow_first_chunk_waits_after_the_headers(
    sim: SimulatorServer, session: aiohttp.ClientSession, fake_sleep: RecordingSleep
) -> None:
    """slow_first_chunk sends the 200 headers, then waits before the first event."""
    await script(session, sim, {"kind": "slow_first_chunk", "seconds": 3.0})
    async with session.post(sim.base_url + CHAT, json=chat_body(stream=True)) as resp:
        assert resp.status == 200  # the headers came before the delay
        assert fake_sleep.calls == [3.0]
        events, error = await read_raw(resp)
    assert error is None
    assert events[-1] == "[DONE]"


@pytest.mark.parametrize(
    "kind", sorted(k.value for k in FaultKind if k.value.startswith(("stream_", "slow_first")))
)
async def test_stream_faults_leave_non_streamed_requests_alone(
    sim: SimulatorServer, session: aiohttp.ClientSession, kind: str
) -> None:
    """A stream fault scripted for a non-streamed request gives a normal answer, counted ok."""
    await script(session, sim, kind)
    async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["choices"][0]["message"]["content"]
    assert sim.stats().by_outcome == {"ok": 1}


async def test_stream_usage_false_drops_the_usage_chunk(session: aiohttp.ClientSession) -> None:
    """stream_usage=False ignores include_usage (as llama.cpp does): no chunk carries usage."""
    async with SimulatorServer(scenario=FaultSpec(stream_usage=False)) as sim:
        events, error = await stream(session, sim, stream_options={"include_usage": True})
    assert error is None
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks
    assert all(c.get("usage") is None for c in chunks)
    assert all(c["choices"] for c in chunks)


async def test_admin_script_rejects_a_bad_after(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """POST /admin/script with a negative ``after`` is a 400 naming script.after."""
    steps = [{"kind": "stream_reset", "after": -1}]
    async with session.post(sim.admin_url + "/script", json={"steps": steps}) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["param"] == "script.after"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stream_fault_after": -1}, "stream_fault_after"),
        ({"stream_fault_after": 1.5}, "stream_fault_after"),
        ({"stream_stall_seconds": -2}, "stream_stall_seconds"),
        ({"first_chunk_delay": "slow"}, "first_chunk_delay"),
        ({"stream_usage": "yes"}, "stream_usage"),
    ],
    ids=["after-negative", "after-float", "stall-negative", "delay-text", "usage-text"],
)
def test_stream_spec_fields_are_validated(kwargs: dict[str, Any], field: str) -> None:
    """Bad stream settings raise ValidationError naming the field."""
    with pytest.raises(ValidationError) as info:
        FaultSpec.from_dict(kwargs)
    assert info.value.field == field


def test_stream_fields_round_trip_through_json() -> None:
    """Stream settings and script steps survive to_dict/from_dict."""
    spec = FaultSpec(
        rates={FaultKind.STREAM_RESET: 0.5},
        stream_fault_after=3,
        stream_stall_seconds=1.5,
        first_chunk_delay=0.5,
        stream_usage=False,
    )
    assert FaultSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    step = ScriptStep.from_value({"kind": "stream_stall", "after": 4, "seconds": 2})
    assert ScriptStep.from_value(step.to_dict()) == step
    assert (step.after, step.seconds) == (4, 2.0)
