"""The thread-backed simulator, driven from plain synchronous code."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from sim_support import chat_body

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.sim import ManualClock, SimulatorThread, start_in_thread


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_thread_serves_and_is_controlled_synchronously() -> None:
    """From sync code: answers, scripts, scenario switches, stats and reset all work."""
    with start_in_thread(seed=1) as sim:
        url = sim.base_url + "/chat/completions"
        assert post(url, chat_body())[0] == 200
        assert sim.script(["503", "429"]) == 2
        assert [post(url, chat_body())[0] for _ in range(3)] == [503, 429, 200]
        spec = sim.set_scenario("rate_limited", seed=4)
        assert spec.name == "rate_limited"
        assert sim.spec.name == "rate_limited"
        stats = sim.stats()
        assert stats.count("/v1/chat/completions") == 4
        assert stats.count(outcome="503") == 1
        assert len(sim.requests()) == 4
        sim.reset()
        assert sim.stats().total == 0
        assert sim.spec.name == "healthy"


def test_thread_outage_with_manual_clock() -> None:
    """A refuse outage closes the port until the manual clock passes the window and tick runs."""
    clock = ManualClock()
    with SimulatorThread(clock=clock) as sim:
        sim.start_outage(3.0)
        assert not sim.listening
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", sim.port), timeout=1).close()
        clock.advance(3.0)
        sim.tick()
        assert sim.listening
        socket.create_connection(("127.0.0.1", sim.port), timeout=1).close()
        sim.start_outage(3.0, mode="503")
        assert post(sim.base_url + "/chat/completions", chat_body())[0] == 503
        sim.end_outage()
        assert post(sim.base_url + "/chat/completions", chat_body())[0] == 200


def test_thread_stop_releases_port() -> None:
    """After stop() nothing listens on the port any more; stop() twice is harmless."""
    sim = start_in_thread()
    port = sim.port
    sim.stop()
    sim.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_thread_errors_surface_in_caller() -> None:
    """Bad options raise at construction; errors inside the loop re-raise in the caller."""
    with pytest.raises(ValidationError):
        SimulatorThread(host="0.0.0.0")
    with start_in_thread() as sim:
        with pytest.raises(ValidationError):
            sim.set_scenario("sunny")
        with pytest.raises(ValidationError):
            sim.script(["teapot"])


def test_thread_port_in_use_fails_start() -> None:
    """Starting on a port already in use raises OSError from start()."""
    with start_in_thread() as first, pytest.raises(OSError):
        start_in_thread(port=first.port)
