"""Smoke tests of the real stack: OTel SDK -> collector -> Jaeger and Prometheus."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from _support.checks import check_generate_trace, check_metrics_and_exemplars
from _support.otlp import emit_generate, otel_sdk
from _support.procs import wait_until
from _support.stack import OTELCOL_TAILSAMPLING_CONFIG, Stack, StackOptions

pytestmark = pytest.mark.e2e


def endpoint_of(stack: Stack, protocol: str = "grpc") -> str:
    c = stack.collector
    return c.otlp_grpc_endpoint if protocol == "grpc" else c.otlp_http_endpoint


def unique_service(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_span_reaches_jaeger(stack: Stack, protocol: str) -> None:
    """A span sent over OTLP (gRPC and HTTP) is found, with its event, in both Jaeger APIs."""
    service = unique_service(f"smoke-{protocol}")
    with otel_sdk(endpoint_of(stack, protocol), service, protocol) as (tracer, meter):
        trace_id = emit_generate(tracer, meter, event="pixel_llm.retry")
    assert stack.jaeger is not None
    check_generate_trace(stack.jaeger, trace_id, service, event="pixel_llm.retry")


def test_metrics_reach_prometheus_with_exemplars(stack: Stack) -> None:
    """Counter and histogram arrive under their contract names, job=service.name, with exemplars.

    The SDK attaches exemplars only to the export that follows the measurement, and the
    collector's exporter serves the latest point, so the test exports once and keeps that point
    until Prometheus has scraped it (long export interval, one explicit flush)."""
    service = unique_service("smoke-metrics")
    with otel_sdk(endpoint_of(stack), service, export_interval_ms=600_000) as (tracer, meter):
        trace_id = emit_generate(tracer, meter)
        meter.flush()
        assert stack.prometheus is not None
        ids = check_metrics_and_exemplars(stack.prometheus, service)
    assert trace_id in ids


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
    with otel_sdk(endpoint_of(stack), service) as (tracer, meter):
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
    with otel_sdk(endpoint_of(stack), service) as (tracer, meter):
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
    with otel_sdk(endpoint_of(stack), service) as (tracer, meter):
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
