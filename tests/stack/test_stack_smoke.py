"""Smoke tests of the real stack: OTel SDK -> collector -> Jaeger and Prometheus."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from _support.procs import wait_until
from _support.stack import OTELCOL_TAILSAMPLING_CONFIG, Stack, StackOptions
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

pytestmark = pytest.mark.e2e


@contextmanager
def otel_sdk(
    stack: Stack, service: str, protocol: str = "grpc", export_interval_ms: int = 500
) -> Iterator[tuple[Tracer, Any]]:
    """A tracer and meter exporting OTLP to the stack's collector; flushed and shut down on exit.

    The meter's `force_flush` is reachable as `meter.flush()` (see test_..._with_exemplars)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter: Any = OTLPSpanExporter(
            endpoint=stack.collector.otlp_grpc_endpoint, insecure=True
        )
        metric_exporter: Any = OTLPMetricExporter(
            endpoint=stack.collector.otlp_grpc_endpoint, insecure=True
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        base = stack.collector.otlp_http_endpoint
        span_exporter = HttpSpanExporter(endpoint=f"{base}/v1/traces")
        metric_exporter = HttpMetricExporter(endpoint=f"{base}/v1/metrics")
    resource = Resource.create({"service.name": service, "service.version": "0.0.0-test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    reader = PeriodicExportingMetricReader(
        metric_exporter, export_interval_millis=export_interval_ms
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("stack-smoke")
    meter.flush = meter_provider.force_flush  # type: ignore[attr-defined]
    try:
        yield tracer_provider.get_tracer("stack-smoke"), meter
    finally:
        tracer_provider.force_flush()
        meter_provider.force_flush()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def emit_generate(
    tracer: Tracer,
    meter: Any,
    attributes: Mapping[str, Any] | None = None,
    event: str | None = None,
    error: bool = False,
) -> str:
    """One `pixel_llm.generate`-like span with a request counter and a duration histogram
    recorded inside it (so the histogram carries an exemplar); returns the trace id (hex)."""
    requests = meter.create_counter("pixel_llm.generate.requests", unit="{request}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    with tracer.start_as_current_span("pixel_llm.generate") as span:
        for key, value in (attributes or {}).items():
            span.set_attribute(key, value)
        if event:
            span.add_event(event, {"pixel_llm.retry.attempt": 1})
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        with tracer.start_as_current_span("chat smoke-model"):
            duration.record(
                0.042, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "smoke-model"}
            )
        requests.add(1, {"pixel_llm.outcome": "error" if error else "success"})
        return format(span.get_span_context().trace_id, "032x")


def unique_service(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_span_reaches_jaeger(stack: Stack, protocol: str) -> None:
    """A span sent over OTLP (gRPC and HTTP) is found, with its event, in both Jaeger APIs."""
    service = unique_service(f"smoke-{protocol}")
    with otel_sdk(stack, service, protocol) as (tracer, meter):
        trace_id = emit_generate(tracer, meter, event="pixel_llm.retry")
    assert stack.jaeger is not None
    trace = stack.jaeger.wait_for_trace(trace_id, min_spans=2)
    names = {s["operationName"] for s in trace["spans"]}
    assert names == {"pixel_llm.generate", "chat smoke-model"}
    assert {p["serviceName"] for p in trace["processes"].values()} == {service}
    root = next(s for s in trace["spans"] if s["operationName"] == "pixel_llm.generate")
    events = [f["value"] for log in root["logs"] for f in log["fields"] if f["key"] == "event"]
    assert events == ["pixel_llm.retry"]
    otlp = stack.jaeger.trace_otlp(trace_id)
    assert otlp is not None
    spans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["name"] for s in spans} == names
    assert service in stack.jaeger.services()


def test_metrics_reach_prometheus_with_exemplars(stack: Stack) -> None:
    """Counter and histogram arrive under their contract names, job=service.name, with exemplars.

    The SDK attaches exemplars only to the export that follows the measurement, and the
    collector's exporter serves the latest point, so the test exports once and keeps that point
    until Prometheus has scraped it (long export interval, one explicit flush)."""
    service = unique_service("smoke-metrics")
    with otel_sdk(stack, service, export_interval_ms=600_000) as (tracer, meter):
        trace_id = emit_generate(tracer, meter)
        meter.flush()
        ids = check_metrics_and_exemplars(stack, service)
    assert trace_id in ids


def check_metrics_and_exemplars(stack: Stack, service: str) -> set[str]:
    """Assert the contract names and labels; return the trace ids of the histogram's exemplars."""
    assert stack.prometheus is not None
    result = stack.prometheus.wait_for(f'pixel_llm_generate_requests_total{{job="{service}"}}')
    assert result[0]["metric"]["pixel_llm_outcome"] == "success"
    assert float(result[0]["value"][1]) == 1.0
    buckets = stack.prometheus.wait_for(
        f'gen_ai_client_operation_duration_seconds_bucket{{job="{service}"}}'
    )
    assert buckets[0]["metric"]["gen_ai_request_model"] == "smoke-model"

    def exemplar_trace_ids() -> set[str] | None:
        series = stack.prometheus.query_exemplars(  # type: ignore[union-attr]
            f'gen_ai_client_operation_duration_seconds_bucket{{job="{service}"}}'
        )
        ids = {e["labels"].get("trace_id") for s in series for e in s["exemplars"]}
        return ids or None

    return wait_until(exemplar_trace_ids, timeout=20, what="exemplars")


def test_prometheus_scrapes_every_target_and_loads_rules(stack: Stack) -> None:
    """Every scrape job is up (collector exporter and self-metrics, Jaeger, Prometheus), the
    alert rules are loaded, and Alertmanager is connected."""
    prom = stack.prometheus
    assert prom is not None
    up = wait_until(
        lambda: (t := prom.targets_up()) and all(t.values()) and t,
        timeout=20,
        what="all targets up",
    )
    assert set(up) == {"otel-collector-exporter", "otel-collector", "jaeger", "prometheus"}
    assert prom.api("rules")["groups"], "no rule groups loaded from collector/prometheus/rules"
    managers = wait_until(
        lambda: prom.api("alertmanagers")["activeAlertmanagers"] or None,
        timeout=20,
        what="an active Alertmanager",
    )
    assert stack.alertmanager is not None
    assert stack.alertmanager.target in managers[0]["url"]


def test_collector_self_metrics_count_received_data(stack: Stack) -> None:
    """The collector's own otelcol_receiver_accepted_* metrics are scraped (pipeline alerts use
    the refused/failed siblings)."""
    service = unique_service("smoke-self")
    with otel_sdk(stack, service) as (tracer, meter):
        emit_generate(tracer, meter)
    assert stack.prometheus is not None
    result = stack.prometheus.wait_for(
        '{__name__=~"otelcol_receiver_accepted_spans(_total)?", job="otel-collector"}'
    )
    assert result[0]["metric"]["receiver"] == "otlp"


def test_collector_restart_keeps_ports(stack_factory: Callable[..., Stack]) -> None:
    """A killed collector comes back on the same ports and accepts data again."""
    stack = stack_factory(
        StackOptions(with_prometheus=False, with_alertmanager=False), name="restart"
    )
    stack.collector.kill()
    assert not stack.collector.running
    stack.collector.restart()
    service = unique_service("smoke-restart")
    with otel_sdk(stack, service) as (tracer, meter):
        trace_id = emit_generate(tracer, meter)
    assert stack.jaeger is not None
    stack.jaeger.wait_for_trace(trace_id)


def test_tail_sampling_keeps_degraded_traces_and_counts_all(
    stack_factory: Callable[..., Stack],
) -> None:
    """With tail sampling (healthy share 0 %), error / retried / fallback traces reach Jaeger,
    a healthy one does not, and span metrics still count all of them."""
    stack = stack_factory(
        StackOptions(
            collector_config=OTELCOL_TAILSAMPLING_CONFIG,
            collector_env={
                "OTELCOL_TAIL_HEALTHY_PERCENT": "0",
                "OTELCOL_TAIL_DECISION_WAIT": "2s",
                "OTELCOL_TAIL_DECISION_AFTER_ROOT": "200ms",
            },
            with_alertmanager=False,
        ),
        name="tailsampling",
    )
    service = unique_service("smoke-tail")
    with otel_sdk(stack, service) as (tracer, meter):
        healthy = emit_generate(
            tracer, meter, {"pixel_llm.outcome": "success", "pixel_llm.attempts": 1}
        )
        kept = {
            "error": emit_generate(tracer, meter, error=True),
            "retried": emit_generate(tracer, meter, {"pixel_llm.attempts": 3}),
            "fallback": emit_generate(tracer, meter, {"pixel_llm.outcome": "fallback"}),
            "breaker-event": emit_generate(
                tracer, meter, event="pixel_llm.circuit_breaker.rejected"
            ),
        }
    assert stack.jaeger is not None
    assert stack.prometheus is not None
    for why, trace_id in kept.items():
        assert stack.jaeger.wait_for_trace(trace_id, timeout=30), why
    time.sleep(2)  # the healthy trace was decided with the others
    assert stack.jaeger.trace(healthy) is None
    calls = stack.prometheus.wait_for(
        f'sum(traces_span_metrics_calls_total{{job="{service}", '
        f'span_name="pixel_llm.generate"}}) >= 5',
        timeout=40,
    )
    assert float(calls[0]["value"][1]) == 5.0
