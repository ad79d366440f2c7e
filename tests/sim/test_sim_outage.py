"""Outage windows on an injected clock: refused connections, 503 mode, recovery on the same port."""

from __future__ import annotations

import aiohttp
import pytest
from sim_support import CHAT, chat_body, wait_for

from pixel_llm_otel.sim import ManualClock, SimulatorServer


async def _status(session: aiohttp.ClientSession, sim: SimulatorServer) -> int:
    async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
        await resp.read()
        return resp.status


async def test_refuse_outage_closes_port_then_reopens_same_port(
    sim: SimulatorServer, clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    """During a refuse outage connections are refused; after the window the same port answers."""
    port = sim.port
    await sim.start_outage(10.0)
    assert not sim.listening
    with pytest.raises(aiohttp.ClientConnectorError):
        await _status(session, sim)
    clock.advance(9.9)
    await sim.tick()
    assert not sim.listening
    clock.advance(0.2)
    await sim.tick()
    assert sim.listening
    assert sim.port == port
    assert await _status(session, sim) == 200
    assert sim.stats().by_outcome == {"ok": 1}  # refused connections never reached it


async def test_watcher_reopens_without_tick(clock: ManualClock) -> None:
    """The watcher task notices the clock passing the window's end and reopens by itself."""
    async with SimulatorServer(clock=clock, poll_interval=0.005) as sim:
        await sim.start_outage(5.0)
        assert not sim.listening
        clock.advance(5.0)
        await wait_for(lambda: sim.listening)


async def test_outage_drops_kept_alive_connections(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """A pooled keep-alive connection does not sneak requests through a refuse outage."""
    assert await _status(session, sim) == 200
    await sim.start_outage(10.0)
    with pytest.raises(aiohttp.ClientError):
        await _status(session, sim)


async def test_http_503_outage_counts_and_sends_retry_after(
    sim: SimulatorServer, clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    """In 503 mode every /v1 request gets 503 with Retry-After = seconds left, then recovers."""
    await sim.start_outage(4.5, mode="503")
    assert sim.listening
    async with session.get(sim.base_url + "/models") as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
    clock.advance(3.0)
    async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["error"]["type"] == "server_error"
    clock.advance(1.5)
    assert await _status(session, sim) == 200
    stats = sim.stats()
    assert stats.count(outcome="outage") == 2
    assert stats.count("/v1/chat/completions", "outage") == 1
    assert not stats.outage_active


async def test_outage_scenario_starts_window_when_applied(
    sim: SimulatorServer, clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    """Switching to the outage scenario starts a 30 s refuse window; then healthy again."""
    clock.advance(100)  # the window is measured from when it is applied, not from start
    await sim.set_scenario("outage")
    stats = sim.stats()
    assert stats.outage_active
    assert stats.outage_remaining == 30.0
    assert not stats.listening
    clock.advance(30)
    await sim.tick()
    assert await _status(session, sim) == 200


async def test_end_outage_and_reset(sim: SimulatorServer, session: aiohttp.ClientSession) -> None:
    """end_outage() and reset() bring the server up at once."""
    await sim.start_outage(60)
    await sim.end_outage()
    assert await _status(session, sim) == 200
    await sim.start_outage(60)
    await sim.reset()
    assert sim.listening
    assert sim.stats().total == 0


async def test_admin_port_stays_up_during_outage(
    clock: ManualClock, session: aiohttp.ClientSession
) -> None:
    """With admin_port, the admin API answers during a refuse outage and can end it."""
    async with SimulatorServer(clock=clock, admin_port=0) as sim:
        assert sim.admin_url != f"{sim.url}/admin"
        async with session.post(sim.admin_url + "/outage", json={"duration": 60}) as resp:
            assert resp.status == 200
            assert (await resp.json())["listening"] is False
        with pytest.raises(aiohttp.ClientConnectorError):
            await _status(session, sim)
        async with session.delete(sim.admin_url + "/outage") as resp:
            assert (await resp.json())["listening"] is True
        assert await _status(session, sim) == 200


async def test_started_in_outage_scenario_binds_then_refuses(clock: ManualClock) -> None:
    """Started in the outage scenario with port 0, the port is known but refuses connections."""
    async with SimulatorServer(scenario="outage", clock=clock) as sim:
        assert sim.port > 0
        assert not sim.listening
        clock.advance(31)
        await sim.tick()
        assert sim.listening


async def test_outage_started_through_api_port_admin(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """An outage started via /admin on the API port answers that request, then refuses."""
    async with session.post(sim.admin_url + "/outage", json={"duration": 30}) as resp:
        assert resp.status == 200
        assert (await resp.json())["outage_active"] is True
    with pytest.raises(aiohttp.ClientConnectionError):  # maybe the pooled, now closed, one
        await _status(session, sim)
    with pytest.raises(aiohttp.ClientConnectorError):  # a fresh connection is refused
        await _status(session, sim)
