"""The admin API: scenarios by name or spec, scripts, stats, requests, reset, errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.sim import FaultKind, SimulatorServer


async def _admin(
    session: aiohttp.ClientSession,
    sim: SimulatorServer,
    method: str,
    path: str,
    body: Any = None,
) -> tuple[int, Any]:
    async with session.request(method, sim.admin_url + path, json=body) as resp:
        return resp.status, await resp.json()


async def test_health_and_initial_stats(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """/admin/health is ok and /admin/stats starts at zero with the scenario named."""
    assert await _admin(session, sim, "GET", "/health") == (200, {"status": "ok"})
    status, stats = await _admin(session, sim, "GET", "/stats")
    assert status == 200
    assert stats["total"] == 0
    assert stats["scenario"] == "healthy"
    assert stats["listening"]


async def test_set_scenario_by_name_with_seed(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """POST /admin/scenario {"name"} switches scenario; GET returns the spec."""
    status, spec = await _admin(
        session, sim, "POST", "/scenario", {"name": "rate_limited", "seed": 2}
    )
    assert status == 200
    assert spec["name"] == "rate_limited"
    assert spec["rates"] == {"429": 0.5}
    assert sim.spec.rates == {FaultKind.RATE_LIMIT: 0.5}
    assert (await _admin(session, sim, "GET", "/scenario"))[1] == spec


async def test_set_scenario_with_full_spec(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """A full spec JSON takes effect: 100% 502 makes the next request a 502."""
    body = {
        "name": "all-502",
        "rates": {"502": 1.0},
        "latency": {"distribution": "fixed", "seconds": 0},
    }
    status, spec = await _admin(session, sim, "POST", "/scenario", body)
    assert status == 200
    assert spec["name"] == "all-502"
    async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
        assert resp.status == 502
    assert (await _admin(session, sim, "GET", "/stats"))[1]["scenario"] == "all-502"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/scenario", {"name": "sunny"}, "scenario"),
        ("/scenario", {"seed": 1}, "name"),
        ("/scenario", {"name": "x", "rates": {"503": 2}}, "rates.503"),
        ("/scenario", {"name": "flaky", "seed": "one"}, "seed"),
        ("/scenario", ["flaky"], "body"),
        ("/script", {"steps": ["503", "teapot"]}, "script"),
        ("/script", {"steps": "503"}, "steps"),
        ("/outage", {"mode": "refuse"}, "duration"),
        ("/outage", {"duration": 1, "mode": "boom"}, "outage.mode"),
    ],
    ids=[
        "unknown-scenario",
        "no-name",
        "bad-rate",
        "bad-seed",
        "not-object",
        "bad-step",
        "steps-not-list",
        "no-duration",
        "bad-mode",
    ],
)
async def test_admin_rejects_bad_input(
    sim: SimulatorServer, session: aiohttp.ClientSession, path: str, body: Any, param: str
) -> None:
    """Bad admin input is a 400 OpenAI error naming the field; nothing changes."""
    status, error = await _admin(session, sim, "POST", path, body)
    assert status == 400
    assert error["error"]["param"] == param
    assert sim.spec.name == "healthy"
    assert sim.stats().script_remaining == 0


async def test_admin_rejects_invalid_json(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """A body that is not JSON is a 400 naming the body."""
    async with session.post(sim.admin_url + "/scenario", data=b"{nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "body"


@pytest.mark.parametrize(
    "body",
    [{"steps": ["503", "ok"]}, ["503", "ok"]],
    ids=["object", "bare-list"],
)
async def test_script_via_admin(
    sim: SimulatorServer, session: aiohttp.ClientSession, body: Any
) -> None:
    """POST /admin/script queues steps consumed by the next requests, in order."""
    assert await _admin(session, sim, "POST", "/script", body) == (200, {"script_remaining": 2})
    statuses = []
    for _ in range(2):
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            statuses.append(resp.status)
    assert statuses == [503, 200]


async def test_script_append_via_admin(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """append: true extends the queue instead of replacing it."""
    await _admin(session, sim, "POST", "/script", ["503"])
    _status, body = await _admin(
        session, sim, "POST", "/script", {"steps": ["500"], "append": True}
    )
    assert body == {"script_remaining": 2}


async def test_stats_and_requests_after_traffic(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """Stats count per endpoint and outcome; /admin/requests lists records, limit keeps the last."""
    sim.script(["503"])
    for _ in range(2):
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            await resp.read()
    async with session.get(sim.base_url + "/models") as resp:
        await resp.read()
    _, stats = await _admin(session, sim, "GET", "/stats")
    assert stats["total"] == 3
    assert stats["by_endpoint"] == {"/v1/chat/completions": 2, "/v1/models": 1}
    assert stats["by_outcome"] == {"503": 1, "ok": 2}
    assert stats["by_endpoint_outcome"]["/v1/chat/completions"] == {"503": 1, "ok": 1}
    _, records = await _admin(session, sim, "GET", "/requests?limit=2")
    assert [(r["seq"], r["path"], r["outcome"]) for r in records["requests"]] == [
        (2, "/v1/chat/completions", "ok"),
        (3, "/v1/models", "ok"),
    ]
    async with session.get(sim.admin_url + "/requests?limit=x") as resp:
        assert resp.status == 400


async def test_reset_via_admin(sim: SimulatorServer, session: aiohttp.ClientSession) -> None:
    """stats_only zeroes counters but keeps the scenario; a full reset restores the start."""
    await sim.set_scenario("flaky")
    sim.script(["503"])
    async with session.get(sim.base_url + "/models") as resp:
        await resp.read()
    _, stats = await _admin(session, sim, "POST", "/reset", {"stats_only": True})
    assert stats["total"] == 0
    assert stats["scenario"] == "flaky"
    assert stats["script_remaining"] == 1
    _, stats = await _admin(session, sim, "POST", "/reset")
    assert stats["scenario"] == "healthy"
    assert stats["script_remaining"] == 0
