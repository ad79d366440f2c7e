"""End to end (e): the collector is killed (SIGKILL) while a host app keeps captioning; the
calls do not notice, what could not be exported is counted as export_failed, and once the
collector is back on the same ports new spans reach Jaeger.

Runs on its own collector + Jaeger so the session stack's Prometheus never sees the gap.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from _support.stack import Stack, StackOptions
from e2e_support import AppProcess, app_args, unique

from pixel_llm_otel.sim import SimulatorThread

pytestmark = pytest.mark.e2e

CALLS_PER_PHASE = 20


def latencies(calls: list[dict[str, Any]]) -> list[float]:
    return [float(c["latency"]) for c in calls]


def calls_since(app: AppProcess, since: float) -> list[dict[str, Any]]:
    """Wait for CALLS_PER_PHASE calls that started at or after `since`; return them."""

    def started() -> list[dict[str, Any]] | None:
        found = [c for c in app.calls() if c["t0"] >= since]
        return found if len(found) >= CALLS_PER_PHASE else None

    return app.wait_for(started, timeout=60, what=f"{CALLS_PER_PHASE} calls of {app.name}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_killed_collector_leaves_calls_alone_and_export_resumes(
    stack_factory: Callable[..., Stack],
    start_app: Callable[..., AppProcess],
    sim: SimulatorThread,
    protocol: str,
) -> None:
    """A SIGKILLed collector leaves calls fast and error-free; export resumes after its restart."""
    stack = stack_factory(
        StackOptions(with_prometheus=False, with_alertmanager=False), name=f"kill-{protocol}"
    )
    jaeger = stack.jaeger
    assert jaeger is not None
    service = unique(f"e2e-kill-{protocol}")
    app = start_app(
        service,
        app_args(sim.base_url, loop=True, pace=0.05, breaker_name=service),
        stack.otel_env(service, protocol=protocol),
    )
    done: dict[str, Any] | None = None
    try:
        before = app.wait_calls(CALLS_PER_PHASE, timeout=60)
        jaeger.wait_for_trace(before[-1]["trace_id"], timeout=30, min_spans=4)  # export works

        stack.collector.kill()
        during = calls_since(app, time.time())
        assert not stack.collector.running

        stack.collector.restart()  # same argv, same ports
        after = calls_since(app, time.time())
        jaeger.wait_for_trace(after[-1]["trace_id"], timeout=45, min_spans=4)  # export resumed
    finally:
        done = app.finish()
    # what the dead collector cost in telemetry is counted, not silently lost (issue 11)
    assert done is not None
    assert done["dropped"]["export_failed"] > 0, done
    assert done["dropped"]["by_reason"].get("export_failed") == done["dropped"]["export_failed"]
    for phase in (before, during, after):
        assert all(c["error"] is None for c in phase), phase
        assert {c["source"] for c in phase} == {"llm"}
    base = statistics.median(latencies(before))
    dead = statistics.median(latencies(during))
    assert dead <= 2 * base + 0.1, (base, dead, latencies(during))
    assert max(latencies(during)) <= max(latencies(before)) + 1.0, latencies(during)
