"""The newcomer path, run exactly as printed: `scripts/stack.sh start`, paste its export lines,
`make demo` (= `python -m pixel_llm_otel demo`), then look at Jaeger, Prometheus and Zipkin.

stack.sh runs here on free ports with its state in a temporary directory (STACK_DIR), so it never
meets a developer's own stack. The module starts it once; the tests read what the demo left, in
file order: the dashboards' rates are read right after the demo, while its minute lasts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _queries import iter_all_panel_queries
from _support.procs import free_port, http_json, wait_until
from _support.zipkin import find_zipkin
from e2e_newcomer import NativeStack, documented_jaeger_searches
from e2e_support import AppProcess, clean_env

pytestmark = pytest.mark.e2e

DEMO_SERVICE = "pixel-llm-demo"  # the demo's default service.name
FAILING_SERVICE = "newcomer-failing-app"
# Dashboard panels that tell the demo's story; each must show a value > 0 right after the demo.
STORY_PANELS = (
    "pixel-llm-overview/Request rate/A",
    "pixel-llm-overview/Requests by outcome/A",
    "pixel-llm-overview/Fallback ratio/A",
    "pixel-llm-overview/LLM latency p50 / p95 / p99/A",
    "pixel-llm-overview/Retries/s by error type/A",
    "pixel-llm-overview/Fallbacks/s by strategy/A",
    "pixel-llm-resilience/Retry attempts/s by error type/A",
    "pixel-llm-resilience/Retries per generate call/A",
    "pixel-llm-resilience/Fallbacks/s by strategy and result/A",
)


@pytest.fixture(scope="module")
def native(
    stack_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NativeStack]:
    """scripts/stack.sh start, on free ports; stopped at the end of the module."""
    stack = NativeStack(tmp_path_factory.mktemp("newcomer-stack"))
    try:
        done = stack.start()
        assert done.returncode == 0, stack.describe()
        yield stack
    finally:
        stack.run("stop", timeout=120)


@pytest.fixture(scope="module")
def demo(native: NativeStack) -> subprocess.CompletedProcess[str]:
    """`make demo`'s command with the printed export lines, and nothing else, in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "pixel_llm_otel", "demo"],
        capture_output=True, text=True, env=clean_env(native.printed_env()), timeout=300,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def failed_calls(native: NativeStack, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Trace ids of two calls that failed (LLM server down, fallbacks off): the demo has none,
    since its cache answers during the outage, and the error searches need something to find."""
    args = ["--url", f"http://127.0.0.1:{free_port()}/v1", "--calls", "2", "--no-fallback"]
    app = AppProcess(
        "failing",
        [*args, "--configure"],
        {**native.printed_env(), "OTEL_SERVICE_NAME": FAILING_SERVICE},
        tmp_path_factory.mktemp("failing-app"),
    ).start()
    calls = app.wait_calls(2, timeout=120)
    app.finish()
    assert all(c["source"] is None for c in calls), calls  # no answer: the call failed
    trace_ids = [c["trace_id"] for c in calls]
    assert all(trace_ids), calls
    for trace_id in trace_ids:
        native.jaeger.wait_for_trace(trace_id, timeout=60)
    return trace_ids


def test_stack_prints_an_endpoint_that_works_with_the_default_protocol(native: NativeStack) -> None:
    """The printed export line is OTLP/HTTP (the package's default protocol) on the HTTP port;
    the gRPC alternative names its protocol."""
    env = native.printed_env()
    assert env == {"OTEL_EXPORTER_OTLP_ENDPOINT": native.url("STACK_OTLP_HTTP_PORT")}
    grpc_line = next(line for line in native.output.splitlines() if "OTLP/gRPC:" in line)
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in grpc_line
    assert native.url("STACK_OTLP_GRPC_PORT") in grpc_line


def test_demo_exports_and_says_so(demo: subprocess.CompletedProcess[str]) -> None:
    """Run as printed, the demo passes its checks and reports that the collector took its data."""
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Telemetry exported" in demo.stdout
    assert "NOT exported" not in demo.stdout
    assert "✓ telemetry exported over OTLP" in demo.stdout
    assert "Failed to export" not in demo.stderr


def test_dashboards_show_the_demo_story(native: NativeStack, demo: Any) -> None:
    """Right after the demo, the story panels' queries return values > 0 in Prometheus, and the
    latency histogram carries exemplars that are traces in Jaeger."""
    assert demo.returncode == 0
    prom = native.prometheus
    queries = {q.name: q for q in iter_all_panel_queries({"service": DEMO_SERVICE})}

    def values(name: str) -> list[float] | None:
        result = prom.query(queries[name].promql)
        found = [float(r["value"][1]) for r in result]
        return found if any(v > 0 for v in found) else None

    for name in STORY_PANELS:
        wait_until(lambda n=name: values(n), timeout=30, what=f"a value > 0 for {name}")  # type: ignore[misc]
    exemplars = wait_until(
        lambda: (
            prom.query_exemplars(
                f'gen_ai_client_operation_duration_seconds_bucket{{job="{DEMO_SERVICE}"}}'
            )
            or None
        ),
        timeout=30,
        what="exemplars on the LLM latency histogram",
    )
    trace_ids = {e["labels"]["trace_id"] for s in exemplars for e in s["exemplars"]}
    assert trace_ids
    assert native.jaeger.wait_for_trace(next(iter(trace_ids)), timeout=30)


def test_demo_on_the_wrong_port_says_nothing_was_exported(native: NativeStack) -> None:
    """The old printed line (HTTP/protobuf to the gRPC port) exports nothing: the demo says so
    and exits 1 instead of claiming success."""
    env = clean_env({"OTEL_EXPORTER_OTLP_ENDPOINT": native.url("STACK_OTLP_GRPC_PORT")})
    done = subprocess.run(
        [sys.executable, "-m", "pixel_llm_otel", "demo", "--quick"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Telemetry NOT exported" in done.stdout
    assert "✗ telemetry exported over OTLP" in done.stdout


def test_every_documented_jaeger_search_finds_the_failed_calls(
    native: NativeStack, failed_calls: list[str]
) -> None:
    """Each Jaeger search in the docs, dashboards and stack.sh's output finds the failed calls
    in the live Jaeger; the v1-style `error=true` finds nothing there (why they changed)."""
    searches = documented_jaeger_searches(native.output)
    tagged = [s for s in searches if any(k == "tags" for k, _ in s.params)]
    sources = {s.source for s in tagged}
    assert {"docs/runbooks.md", "docs/dashboards.md", "stack.sh output"} <= sources, sources
    assert any(s.startswith("pixel-llm-overview.json") for s in sources), sources
    for search in searches:
        url = search.url(native.jaeger.url, FAILING_SERVICE)
        found = {t["traceID"] for t in http_json(url).get("data") or []}
        assert set(failed_calls) <= found, (search.source, url, found)
    legacy = http_json(
        f"{native.jaeger.url}/api/traces?service={FAILING_SERVICE}&lookback=1h"
        '&tags={"error":"true"}'
    )
    assert not legacy.get("data"), "Jaeger v2 now matches error=true: the docs can say so again"


def test_demo_traces_reach_zipkin(native: NativeStack, demo: Any) -> None:
    """With Java and the jar, stack.sh runs Zipkin, prints its UI, and gets the demo's traces."""
    if find_zipkin() is None:
        pytest.skip("no java or zipkin.jar: stack.sh runs without Zipkin")
    assert f"{native.url('STACK_ZIPKIN_PORT')}/zipkin/" in native.output
    retried = native.zipkin.wait_for_traces(
        DEMO_SERVICE, annotation_query="http.request.resend_count", timeout=60
    )
    assert retried


def test_start_with_other_config_restarts_only_the_collector(native: NativeStack) -> None:
    """`start --tail-sampling` on a running stack restarts the collector with that config (the
    others keep their pids), and a plain `start` switches back; the old log is kept as .log.1."""
    before = {n: native.pid(n) for n in ("otelcol", "jaeger", "prometheus", "alertmanager")}
    switched = native.run("start", "--tail-sampling")
    assert switched.returncode == 0, switched.stdout
    assert "restarting it with otelcol-tailsampling.yaml" in switched.stdout
    assert native.pid("otelcol") != before["otelcol"]
    assert all(native.pid(n) == before[n] for n in ("jaeger", "prometheus", "alertmanager"))
    status = native.run("status").stdout
    assert "otelcol-tailsampling.yaml" in status
    assert native.log("otelcol").with_suffix(".log.1").exists()
    back = native.run("start")
    assert back.returncode == 0, back.stdout
    assert "otelcol.yaml" in native.run("status").stdout


def test_components_stop_and_start_one_at_a_time(native: NativeStack) -> None:
    """`stop prometheus` stops only Prometheus; `start prometheus` brings it back, ready."""
    jaeger = native.pid("jaeger")
    stopped = native.run("stop", "prometheus")
    assert stopped.returncode == 0, stopped.stdout
    status = native.run("status").stdout
    assert any(line.split()[:2] == ["prometheus", "stopped"] for line in status.splitlines())
    assert native.pid("jaeger") == jaeger
    started = native.run("start", "prometheus")
    assert started.returncode == 0, started.stdout
    assert wait_until(lambda: native.prometheus.api("status/buildinfo"), timeout=30)
    assert native.pid("jaeger") == jaeger


def test_collector_starts_without_warnings(native: NativeStack) -> None:
    """Neither collector config logs a warning at start (e.g. an OTTL path rewrite); stack.sh
    returns once the collector is ready, so its start-up lines are all in the log by then."""
    assert native.run("start", "--tail-sampling").returncode == 0
    assert native.run("start").returncode == 0
    for log in (native.log("otelcol").with_suffix(".log.1"), native.log("otelcol")):
        warnings = [
            json.dumps(line)
            for line in log.read_text().splitlines()
            if "\twarn\t" in line or "please rewrite" in line
        ]
        assert not warnings, (log.name, warnings)
