"""Request handling: 400 validation, API keys, traceparent recording, no secrets logged."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.sim import SimulatorServer

BAD_BODIES = [
    ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
    ({"model": "m"}, "messages", "missing_required_parameter"),
    ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model", "invalid_type"),
    ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
    ({"model": "m", "messages": []}, "messages", "empty_array"),
    (
        {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
        "messages[0].content",
        "invalid_type",
    ),
    (chat_body(max_tokens=-1), "max_tokens", "integer_below_min_value"),
    (chat_body(max_tokens="10"), "max_tokens", "invalid_type"),
    (chat_body(max_tokens=True), "max_tokens", "invalid_type"),
    (chat_body(temperature=2.5), "temperature", "decimal_above_max_value"),
    (chat_body(temperature=-0.1), "temperature", "decimal_below_min_value"),
    (chat_body(temperature="hot"), "temperature", "invalid_type"),
    (chat_body(top_p=1.5), "top_p", "decimal_above_max_value"),
    (chat_body(stream="yes"), "stream", "invalid_type"),
    (
        chat_body(stream_options={"include_usage": 1}),
        "stream_options.include_usage",
        "invalid_type",
    ),
    (chat_body(n=0), "n", "invalid_value"),
]


@pytest.mark.parametrize(
    ("body", "param", "code"), BAD_BODIES, ids=[f"{p}-{c}" for _, p, c in BAD_BODIES]
)
async def test_invalid_requests_get_400(
    sim: SimulatorServer, session: aiohttp.ClientSession, body: Any, param: str, code: str
) -> None:
    """Invalid chat requests get 400 with an OpenAI error naming the param, and use no script."""
    sim.script(["503"])
    async with session.post(sim.base_url + CHAT, json=body) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert param.split("[")[0].split(".")[0] in error["message"]
    stats = sim.stats()
    assert stats.count("/v1/chat/completions", "invalid_request") == 1
    assert stats.script_remaining == 1


@pytest.mark.parametrize(
    "payload", [b"{not json", b"[1, 2]", b""], ids=["broken", "array", "empty"]
)
async def test_unparseable_body_gets_400(
    sim: SimulatorServer, session: aiohttp.ClientSession, payload: bytes
) -> None:
    """A body that is not a JSON object is a 400 invalid_request_error."""
    headers = {"Content-Type": "application/json"}
    async with session.post(sim.base_url + CHAT, data=payload, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic sk-sim-secret"}, 401),
        ({"Authorization": "Bearer sk-sim-secret"}, 200),
        ({"Authorization": "bearer sk-sim-secret"}, 200),
    ],
    ids=["missing", "wrong", "wrong-scheme", "right", "scheme-case"],
)
@pytest.mark.parametrize("path", ["/models", CHAT], ids=["models", "chat"])
async def test_api_key_enforced(
    session: aiohttp.ClientSession, headers: dict[str, str], status: int, path: str
) -> None:
    """With api_key, /v1 needs the right Bearer token; otherwise 401 invalid_api_key."""
    async with SimulatorServer(api_key="sk-sim-secret") as sim:
        method = "GET" if path == "/models" else "POST"
        async with session.request(
            method, sim.base_url + path, json=chat_body(), headers=headers
        ) as resp:
            assert resp.status == status
            body = await resp.json()
        if status == 401:
            assert body["error"]["code"] == "invalid_api_key"
            assert "sk-sim-secret" not in str(body)
            assert sim.stats().count(outcome="unauthorized") == 1


async def test_admin_needs_no_api_key(session: aiohttp.ClientSession) -> None:
    """The admin API on loopback is not behind the API key."""
    async with SimulatorServer(api_key="k") as sim, session.get(sim.admin_url + "/stats") as resp:
        assert resp.status == 200


async def test_api_key_never_logged(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing the simulator logs (at DEBUG) contains the key or the Authorization header."""
    caplog.set_level(logging.DEBUG)
    async with SimulatorServer(api_key="sk-very-secret") as sim:
        for token in ("sk-very-secret", "nope"):
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(sim.base_url + CHAT, json=chat_body(), headers=headers) as resp:
                await resp.read()
    assert caplog.records
    assert "sk-very-secret" not in caplog.text
    assert "Bearer" not in caplog.text


async def test_traceparent_recorded_per_request(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """Each request's traceparent header (or None) is recorded in order, with its outcome."""
    tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    tp2 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sim.script(["503"])
    for headers in ({"traceparent": tp1}, {"traceparent": tp2}, {}):
        async with session.post(sim.base_url + CHAT, json=chat_body(), headers=headers) as resp:
            await resp.read()
    assert sim.stats().traceparents == (tp1, tp2, None)
    records = sim.requests()
    assert [(r.traceparent, r.outcome, r.model) for r in records] == [
        (tp1, "503", "sim-model"),
        (tp2, "ok", "sim-model"),
        (None, "ok", "sim-model"),
    ]


async def test_counters_by_endpoint_and_outcome(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """count() answers per endpoint, per outcome and both; reset_stats zeroes them."""
    sim.script(["500", "ok"])
    for _ in range(2):
        async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
            await resp.read()
    async with session.get(sim.base_url + "/models") as resp:
        await resp.read()
    stats = sim.stats()
    assert stats.total == 3
    assert stats.count("/v1/chat/completions") == 2
    assert stats.count("/v1/models", "ok") == 1
    assert stats.count(outcome="500") == 1
    assert stats.count("/v1/models", "500") == 0
    sim.reset_stats()
    assert sim.stats().total == 0
    assert sim.requests() == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"host": "0.0.0.0"}, "host"),
        ({"host": "example.com"}, "host"),
        ({"port": 70000}, "port"),
        ({"port": "80"}, "port"),
        ({"admin_port": -1}, "admin_port"),
        ({"api_key": ""}, "api_key"),
        ({"models": []}, "models"),
        ({"scenario": "sunny"}, "scenario"),
    ],
    ids=[
        "any-address",
        "hostname",
        "port-range",
        "port-type",
        "admin-port",
        "empty-key",
        "no-models",
        "unknown-scenario",
    ],
)
def test_bad_server_options_raise(kwargs: dict[str, Any], field: str) -> None:
    """Bad constructor options raise ValidationError naming the field (only loopback hosts)."""
    with pytest.raises(ValidationError) as info:
        SimulatorServer(**kwargs)
    assert info.value.field == field
