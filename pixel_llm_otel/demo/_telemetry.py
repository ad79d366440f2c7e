"""The demo's telemetry: OTLP export when an endpoint is set, else in-memory, printed at the end.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, :func:`pixel_llm_otel.telemetry.configure` exports
traces, metrics and logs over OTLP (to the collector of ``make stack``), metrics every
:data:`DEMO_METRIC_INTERVAL_S` (unless ``OTEL_METRIC_EXPORT_INTERVAL`` says otherwise) so the
dashboards' rates move during a run of a few seconds; :meth:`DemoTelemetry.export_report` then
says honestly whether the collector took it. Without an endpoint, the demo adds the SDK's in-memory
span exporter and metric reader, so a newcomer sees one trace tree per phase and a summary of the
metrics with no collector running. If the process already had OpenTelemetry providers (a host app,
a second run), they are used and nothing is collected here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEMO_METRIC_INTERVAL_S", "DemoTelemetry", "ExportReport", "MetricLine", "SpanNode"]

#: Metric export interval of the demo (the SDK's default, 60 s, is longer than the whole story).
DEMO_METRIC_INTERVAL_S = 2.0
#: How long the end-of-run probe waits for the collector.
_PROBE_TIMEOUT_S = 3.0

#: Span attributes worth a place in the printed tree.
_SHOWN = (
    "pixel_llm.outcome",
    "pixel_llm.attempts",
    "pixel_llm.fallback.strategy",
    "error.type",
    "pixel_llm.batch.size",
    "pixel_llm.encoder.device",
    "gen_ai.usage.output_tokens",
    "http.response.status_code",
    "http.request.resend_count",
    "pixel_llm.stream.end",
    "gen_ai.response.time_to_first_chunk",
)
#: Metric attributes left out of the summary (the same on every point in the demo).
_QUIET = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
    "server.port",
)


@dataclass
class SpanNode:
    """One span of a printed trace tree."""

    name: str
    duration_ms: float
    status: str  # UNSET | OK | ERROR
    attributes: tuple[tuple[str, Any], ...]
    events: tuple[str, ...]
    start: int
    children: list[SpanNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MetricLine:
    name: str
    attributes: str
    value: str


@dataclass(frozen=True, slots=True)
class ExportReport:
    """Whether the demo's OTLP export reached the collector, told honestly."""

    endpoint: str
    protocol: str
    accepted: bool  # the collector accepted an OTLP export with the run's own settings
    dropped_spans: int  # spans dropped or failed to export (pixel_llm.telemetry.dropped)
    dropped_logs: int
    counted: bool  # False: this SDK's drops cannot be counted

    @property
    def ok(self) -> bool:
        return self.accepted and self.dropped_spans == 0 and self.dropped_logs == 0


class DemoTelemetry:
    """Telemetry for one demo run; :meth:`shutdown` flushes and undoes it."""

    def __init__(self, handle: Any, spans: Any = None, reader: Any = None) -> None:
        self._handle = handle
        self._spans = spans
        self._reader = reader

    @property
    def exporting(self) -> bool:
        """True when spans go over OTLP (nothing is printed locally)."""
        return self._spans is None

    @property
    def endpoint(self) -> str | None:
        return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")

    @classmethod
    def start(cls) -> DemoTelemetry:
        from ..telemetry import configure

        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            interval = (
                None if os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") else DEMO_METRIC_INTERVAL_S
            )
            return cls(configure(service_name=_service_name(), export_interval=interval))
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        handle = configure(
            service_name=_service_name(),
            span_exporter=spans,
            metric_reader=reader,
            enable_logs=False,
        )
        return cls(handle, spans, reader)

    def flush(self) -> None:
        self._handle.force_flush()

    def export_report(self) -> ExportReport | None:
        """After :meth:`flush`: did the export work? ``None`` when nothing was exported.

        Two honest sources: a probe (an empty OTLP trace export with the same endpoint, protocol
        and headers the run used, so a wrong port or protocol shows as "not accepted") and the
        handle's dropped-telemetry counts (full queues; failed exports where counted)."""
        if not self.exporting or not getattr(self._handle, "enabled", False):
            return None
        from ..telemetry._exporters import ExportSettings, build_exporter

        settings = ExportSettings(timeout=_PROBE_TIMEOUT_S)
        accepted = False
        try:
            exporter = build_exporter(settings, "traces")
            if exporter is not None:
                try:
                    accepted = exporter.export([]).name == "SUCCESS"
                finally:
                    exporter.shutdown()
        except Exception:  # any failure to build or send is "not accepted"
            accepted = False
        dropped = self._handle.dropped()
        return ExportReport(
            endpoint=self.endpoint or "",
            protocol=settings.protocol_for("traces"),
            accepted=accepted,
            dropped_spans=dropped.spans,
            dropped_logs=dropped.logs,
            counted=dropped.tracked,
        )

    def trace(self, trace_id: str) -> SpanNode | None:
        """The tree of spans with ``trace_id`` (its root), or ``None`` if none were collected."""
        if self._spans is None:
            return None
        spans = [
            s
            for s in self._spans.get_finished_spans()
            if format(s.context.trace_id, "032x") == trace_id
        ]
        if not spans:
            return None
        nodes = {s.context.span_id: _node(s) for s in spans}
        roots: list[SpanNode] = []
        for s in spans:
            parent = s.parent.span_id if s.parent is not None else None
            if parent in nodes:
                nodes[parent].children.append(nodes[s.context.span_id])
            else:
                roots.append(nodes[s.context.span_id])
        for node in nodes.values():
            node.children.sort(key=lambda n: n.start)
        return min(roots, key=lambda n: n.start)

    def metrics(self) -> list[MetricLine]:
        """One line per data point of the pixel_llm.* and gen_ai.* metrics."""
        if self._reader is None:
            return []
        data = self._reader.get_metrics_data()
        lines: list[MetricLine] = []
        for rm in getattr(data, "resource_metrics", ()) or ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if not metric.name.startswith(("pixel_llm.", "gen_ai.")):
                        continue
                    for point in metric.data.data_points:
                        lines.append(
                            MetricLine(metric.name, _attrs(point.attributes), _value(point))
                        )
        return sorted(lines, key=lambda m: (m.name, m.attributes))

    def shutdown(self) -> None:
        self._handle.shutdown()


def _service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME", "pixel-llm-demo")


def _node(span: Any) -> SpanNode:
    attrs = dict(span.attributes or {})
    shown = tuple((k, attrs[k]) for k in _SHOWN if k in attrs)
    events = tuple(
        f"{e.name} " + ", ".join(f"{k}={_short(v)}" for k, v in (e.attributes or {}).items())
        for e in span.events
        if e.name != "exception"
    )
    duration = ((span.end_time or span.start_time) - span.start_time) / 1e6
    return SpanNode(
        span.name, duration, span.status.status_code.name, shown, events, span.start_time
    )


def _short(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _attrs(attributes: Any) -> str:
    """Compact ``key=value`` pairs: the ``pixel_llm.`` prefix and constant keys left out."""
    pairs = sorted((attributes or {}).items())
    return ", ".join(
        f"{k.removeprefix('pixel_llm.').replace('circuit_breaker.', 'breaker.')}={v}"
        for k, v in pairs
        if k not in _QUIET
    )


def _value(point: Any) -> str:
    if hasattr(point, "bucket_counts"):  # histogram
        return f"n={point.count} sum={point.sum:.3f}"
    value = point.value
    return f"{value:g}" if isinstance(value, float) else str(value)
