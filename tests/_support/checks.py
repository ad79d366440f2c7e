"""Assertions shared by the native and the Docker smoke tests: what a trace and the metrics sent
by tests/_support/otlp.py look like once they went through the collector."""

from __future__ import annotations

from .clients import JaegerAPI, PrometheusAPI
from .procs import wait_until


def check_generate_trace(
    jaeger: JaegerAPI, trace_id: str, service: str, event: str | None = None
) -> None:
    """The trace of otlp.emit_generate is in both Jaeger APIs, with its two spans and event."""
    trace = jaeger.wait_for_trace(trace_id, min_spans=2)
    names = {s["operationName"] for s in trace["spans"]}
    assert names == {"pixel_llm.generate", "chat smoke-model"}
    assert {p["serviceName"] for p in trace["processes"].values()} == {service}
    root = next(s for s in trace["spans"] if s["operationName"] == "pixel_llm.generate")
    events = [f["value"] for log in root["logs"] for f in log["fields"] if f["key"] == "event"]
    assert events == ([event] if event else [])
    otlp = jaeger.trace_otlp(trace_id)
    assert otlp is not None
    spans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["name"] for s in spans} == names
    assert service in jaeger.services()


def check_metrics_and_exemplars(prom: PrometheusAPI, service: str) -> set[str]:
    """Assert the contract names and labels; return the trace ids of the histogram's exemplars."""
    result = prom.wait_for(f'pixel_llm_generate_requests_total{{job="{service}"}}')
    assert result[0]["metric"]["pixel_llm_outcome"] == "success"
    assert float(result[0]["value"][1]) == 1.0
    buckets = prom.wait_for(f'gen_ai_client_operation_duration_seconds_bucket{{job="{service}"}}')
    assert buckets[0]["metric"]["gen_ai_request_model"] == "smoke-model"

    def exemplar_trace_ids() -> set[str] | None:
        series = prom.query_exemplars(
            f'gen_ai_client_operation_duration_seconds_bucket{{job="{service}"}}'
        )
        ids = {e["labels"].get("trace_id") for s in series for e in s["exemplars"]}
        return ids or None

    return wait_until(exemplar_trace_ids, timeout=20, what="exemplars")
