"""The demo: `run_demo(["--quick"])` tells the whole story and exits 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from pixel_llm_otel.demo import parse_options, run_demo


def test_quick_demo_prints_the_phase_table_and_passes(capsys):
    """--quick runs every phase, prints the per-phase table and all checks hold (exit 0)."""
    assert run_demo(["--quick", "--no-telemetry"]) == 0
    out = capsys.readouterr().out
    for phase in ("Healthy", "Transient errors", "Outage", "Recovery", "Streaming"):
        assert phase in out
    for column in ("Calls", "Retries", "Fallbacks", "Breaker", "p50", "p95", "TTFC"):
        assert column in out
    assert "closed->open" in out
    assert "half_open->closed" in out
    assert "✗" not in out
    assert out.count("✓") == 6


def test_demo_prints_trace_trees_and_metrics_without_a_collector(tmp_path):
    """With telemetry and no OTLP endpoint, traces and metrics are printed (own process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "pixel_llm_otel", "demo", "--quick"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "Telemetry: one trace per phase" in out
    assert "pixel_llm.generate" in out
    assert "chat sim-model" in out
    assert "pixel_llm.retry" in out
    assert "pixel_llm.circuit_breaker.state_change" in out
    assert "pixel_llm.generate.requests" in out
    assert "Streaming: trace" in out
    assert "pixel_llm.stream.end=completed" in out
    assert "gen_ai.client.operation.time_to_first_chunk" in out


def test_unreachable_real_server_exits_2(unused_port):
    """--url pointing at nothing reports it clearly and exits 2."""
    buffer = io.StringIO()
    status = run_demo(
        ["--url", f"http://127.0.0.1:{unused_port}/v1", "--no-telemetry"],
        console=Console(file=buffer, width=120),
    )
    assert status == 2
    assert "Cannot reach" in buffer.getvalue()


@pytest.mark.parametrize(
    ("argv", "calls", "pace"),
    [(["--quick"], 4, 0.0), ([], 12, 0.12), (["--calls", "6", "--pace", "0"], 6, 0.0)],
    ids=["quick", "default", "explicit"],
)
def test_options(argv, calls, pace):
    """--quick shortens the story; explicit options win."""
    options = parse_options(argv)
    assert (options.calls, options.pace) == (calls, pace)


def test_too_few_calls_is_refused():
    """Fewer than 4 calls cannot show an outage: argparse exits with status 2."""
    with pytest.raises(SystemExit) as caught:
        parse_options(["--calls", "2"])
    assert caught.value.code == 2


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_real_server_table_is_readable_at_120_columns():
    """Against a real server (--url), the table keeps its columns whole at 120 columns, says
    why the fault phases were skipped under it, and shows the server's count as unknown."""
    from pixel_llm_otel.sim import SimulatorThread

    buffer = io.StringIO()
    with SimulatorThread(port=0) as sim:
        status = run_demo(
            ["--url", sim.base_url, "--model", "sim-model", "--calls", "4", "--no-telemetry"],
            console=Console(file=buffer, width=120),
        )
    out = buffer.getvalue()
    assert status == 0, out
    header = next(line for line in out.splitlines() if "Phase" in line and "Calls" in line)
    for column in ("Retries", "Fallbacks", "Rejected", "Failed", "Server saw", "Breaker", "p95"):
        assert column in header, header
    healthy = next(line for line in out.splitlines() if "Healthy" in line)
    assert "unknown" in healthy
    assert "Skipped: Transient errors, Outage, Recovery: needs the simulator" in out
    assert max(len(line) for line in out.splitlines()) <= 120
