"""Send telemetry with the OpenTelemetry SDK straight to a collector (no pixel_llm_otel involved):
what the stack's smoke tests feed it with."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode


@contextmanager
def otel_sdk(
    endpoint: str, service: str, protocol: str = "grpc", export_interval_ms: int = 500
) -> Iterator[tuple[Tracer, Any]]:
    """A tracer and meter exporting OTLP to `endpoint` (a collector's base URL for `protocol`,
    grpc or http); flushed and shut down on exit. `meter.flush()` is the provider's force_flush."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter: Any = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        metric_exporter: Any = OTLPMetricExporter(endpoint=endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        span_exporter = HttpSpanExporter(endpoint=f"{endpoint}/v1/traces")
        metric_exporter = HttpMetricExporter(endpoint=f"{endpoint}/v1/metrics")
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
