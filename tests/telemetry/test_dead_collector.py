"""A dead or silent collector, for real (a closed loopback port; a port that accepts TCP and never
answers): lost spans and log records are counted as export_failed, and shutdown is bounded."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_support import REQUEST, RESPONSE, fresh_otel

from pixel_llm_otel import hooks
from pixel_llm_otel.telemetry import TelemetryHandle, configure

#: What shutdown may take beyond its budget on a loaded machine (thread joins, socket closes).
SHUTDOWN_SLACK_S = 1.0


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* variables, no global providers, no active handle, before and after."""
    with fresh_otel(monkeypatch, shutdown_timeout=0.1):
        yield


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connects are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose kernel backlog completes handshakes; nobody ever reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def _story(calls: int) -> None:
    obs = hooks.get_observer()
    for _ in range(calls):
        with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
            with obs.chat(REQUEST) as c:
                c.response(RESPONSE)
            g.finish(outcome="success", attempts=1)
        logging.getLogger("pixel_llm_otel.test").warning("one log record per call")


def _dropped_points(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    data = reader.get_metrics_data()
    return {
        (str(p.attributes["pixel_llm.telemetry.signal"]), str(p.attributes["error.type"])): int(
            p.value
        )
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "pixel_llm.telemetry.dropped"
        for p in m.data.data_points
    }


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"], ids=["http", "grpc"])
def test_a_closed_port_counts_every_span_and_log_record_as_export_failed(
    closed_port: int, protocol: str
) -> None:
    """Batches the exporter could not deliver: their items are export_failed, per signal."""
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()  # these see every span and log record, so the counts are known
    logs = InMemoryLogRecordExporter()
    handle = configure(
        endpoint=f"http://127.0.0.1:{closed_port}",
        protocol=protocol,
        export_timeout=0.5,
        span_exporter=spans,
        log_exporter=logs,
        metric_reader=reader,
    )
    _story(10)
    handle.force_flush(5_000)
    handle.force_flush(5_000)  # the warnings the first flush logged about its own failure
    made = len(spans.get_finished_spans())
    logged = len(logs.get_finished_logs())  # ours, and the warnings about the failed export
    stats = handle.dropped()
    assert made > 0
    assert logged >= 10
    assert (stats.spans, stats.logs) == (made, logged)
    assert stats.export_failed == made + logged
    assert stats.by_reason == {"export_failed": made + logged}
    points = _dropped_points(reader)
    assert points == {("spans", "export_failed"): made, ("logs", "export_failed"): logged}


def test_a_reachable_exporter_counts_nothing() -> None:
    """In-process exporters that succeed: no drop of any kind (the count is not inflated)."""
    handle = configure(span_exporter=InMemorySpanExporter(), metric_reader=InMemoryMetricReader())
    _story(5)
    assert handle.force_flush(5_000)
    assert handle.dropped().export_failed == 0
    assert handle.dropped().by_reason == {}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"], ids=["http", "grpc"])
@pytest.mark.parametrize("budget", [None, 0.3], ids=["default-export-timeout", "explicit"])
def test_shutdown_with_a_silent_collector_returns_within_its_budget(
    silent_port: int, budget: float | None, protocol: str
) -> None:
    """A collector that accepts and never answers: shutdown returns within its budget + slack,
    and every span and log record it could not deliver ends up counted as export_failed."""
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()
    handle: TelemetryHandle = configure(
        endpoint=f"http://127.0.0.1:{silent_port}",
        protocol=protocol,
        export_timeout=1.0,
        span_exporter=spans,
        log_exporter=logs,
        metric_reader=InMemoryMetricReader(),
    )
    _story(20)
    started = time.monotonic()
    handle.shutdown(timeout=budget)
    elapsed = time.monotonic() - started
    assert elapsed <= (1.0 if budget is None else budget) + SHUTDOWN_SLACK_S
    made = len(spans.get_finished_spans())

    def all_counted() -> bool:
        stats = handle.dropped()
        total = stats.spans + stats.logs
        return stats.spans == made and stats.logs >= 20 and stats.export_failed == total

    assert _wait_for(all_counted, timeout=10.0), handle.dropped()
