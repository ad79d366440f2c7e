"""The command line: `simulate` as a real process, `demo` dispatch, usage errors."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import types
import urllib.request
from collections.abc import Iterator

import pytest

from pixel_llm_otel import cli


@pytest.fixture
def simulate_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m pixel_llm_otel simulate --port 0` running; yields it and its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixel_llm_otel",
            "simulate",
            "--port",
            "0",
            "--seed",
            "3",
            "--scenario",
            "healthy",
            "--api-key",
            "cli-key",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)  # deadline for start-up
        assert ready, "simulate printed nothing within 20 s"
        url = proc.stdout.readline().strip()  # the first line: the bound base URL
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_simulate_prints_url_answers_and_stops_on_sigterm(
    simulate_process: tuple[subprocess.Popen[str], str],
) -> None:
    """The first stdout line is the base URL; it answers with the key; SIGTERM exits 0."""
    proc, url = simulate_process
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v1")
    request = urllib.request.Request(url + "/models", headers={"Authorization": "Bearer cli-key"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert [m["id"] for m in json.loads(resp.read())["data"]] == [
            "sim-model",
            "sim-vision-model",
        ]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_simulate_rejects_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    """--host 0.0.0.0 exits 2 with a message naming the host; nothing is served."""
    assert cli.main(["simulate", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "host" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["simulate", "--scenario", "sunny"], ["frobnicate"], []],
    ids=["bad-scenario", "unknown-command", "no-command"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors return 2 and print usage on stderr."""
    assert cli.main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and returns 0."""
    from pixel_llm_otel import __version__

    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_demo_passes_arguments_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo ARGS` calls pixel_llm_otel.demo.main with ARGS untouched (--help included)."""
    seen: list[list[str]] = []
    fake = types.ModuleType("pixel_llm_otel.demo")

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pixel_llm_otel.demo", fake)
    assert cli.main(["demo", "--url", "http://127.0.0.1:1/v1", "--help"]) == 7
    assert seen == [["--url", "http://127.0.0.1:1/v1", "--help"]]


def test_demo_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without pixel_llm_otel.demo.main, `demo` returns 2 and says so."""
    monkeypatch.setitem(sys.modules, "pixel_llm_otel.demo", types.ModuleType("pixel_llm_otel.demo"))
    assert cli.main(["demo"]) == 2
    assert "demo is not available" in capsys.readouterr().err


def test_simulate_latency_option_sets_a_fixed_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    """--latency 0.05 serves the scenario with a fixed 50 ms latency; its other faults stay."""
    seen: list[object] = []

    def fake_run(coro: types.CoroutineType[object, object, None]) -> None:
        coro.close()  # never serve: only the server it was given matters

    import pixel_llm_otel.sim as sim

    real = sim.SimulatorServer

    def capture(**kwargs: object) -> object:
        seen.append(kwargs["scenario"])
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sim, "SimulatorServer", capture)
    monkeypatch.setattr(cli.asyncio, "run", fake_run)
    assert cli.main(["simulate", "--port", "0", "--scenario", "flaky", "--latency", "0.05"]) == 0
    (spec,) = seen
    assert isinstance(spec, sim.FaultSpec)
    assert spec.latency == sim.Latency.fixed(0.05)
    assert spec.rates == sim.SCENARIOS["flaky"].rates


def test_simulate_rejects_negative_latency(capsys: pytest.CaptureFixture[str]) -> None:
    """--latency -1 exits 2 with a message naming --latency."""
    assert cli.main(["simulate", "--port", "0", "--latency", "-1"]) == 2
    assert "--latency" in capsys.readouterr().err
