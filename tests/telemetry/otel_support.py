"""Helpers shared by the telemetry tests: an in-memory capture of spans and metrics."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _support.otel_globals import reset_otel_globals
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pixel_llm_otel import hooks
from pixel_llm_otel.hooks import ChatRequestInfo, ChatResponseInfo
from pixel_llm_otel.telemetry import PixelLLMInstrumentor


@dataclass
class Captured:
    """What one test's instrumentation recorded."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    log_exporter: InMemoryLogRecordExporter

    def logs(self, event_name: str | None = None) -> list[Any]:
        """Finished log records (of one event name when given)."""
        records = [d.log_record for d in self.log_exporter.get_finished_logs()]
        return [r for r in records if event_name is None or r.event_name == event_name]

    @property
    def observer(self) -> hooks.PipelineObserver:
        return hooks.get_observer()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [s for s in self.spans() if s.name == name]
        return found

    def points(self, metric: str) -> list[Any]:
        """Every data point of ``metric`` (empty when it was never recorded)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found

    def values(self, metric: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """``{frozenset(attributes): value}`` of a counter or gauge (histograms: count)."""
        return {
            frozenset(p.attributes.items()): getattr(p, "value", getattr(p, "count", None))
            for p in self.points(metric)
        }


def make_captured(
    *, before: Callable[[TracerProvider], object] | None = None, **instrument_kwargs: Any
) -> Captured:
    """Fresh in-memory providers, ``before(tracer_provider)`` (the host's own instrumentation),
    then ours on the same providers; a log exporter too (``captured.logs()``)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(**instrument_kwargs.pop("tracer_kwargs", {}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    if before is not None:
        before(tracer_provider)
    PixelLLMInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        **instrument_kwargs,
    )
    return Captured(exporter, reader, tracer_provider, meter_provider, log_exporter)


REQUEST = ChatRequestInfo(
    model="qwen2-vl",
    provider="lm_studio",
    server_address="127.0.0.1",
    server_port=1234,
    max_tokens=64,
    temperature=0.2,
    messages=({"role": "user", "content": "describe the image"},),
)
RESPONSE = ChatResponseInfo(
    response_id="chatcmpl-1",
    response_model="qwen2-vl-7b",
    finish_reasons=("stop",),
    input_tokens=42,
    output_tokens=7,
    output_text="a cat on a mat",
)


@contextlib.contextmanager
def fresh_otel(monkeypatch: Any, *, shutdown_timeout: float | None = None) -> Iterator[None]:
    """No OTEL_* variables, no global providers, no active handle, before and after the block
    (an active handle left by the test is shut down, within ``shutdown_timeout`` when given)."""
    from pixel_llm_otel.telemetry import _configure as configure_module

    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    reset_otel_globals()
    yield
    active = configure_module._active
    if active is not None:
        if shutdown_timeout is None:
            active.shutdown()
        else:
            active.shutdown(timeout=shutdown_timeout)
    reset_otel_globals()
