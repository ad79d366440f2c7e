"""Helpers of the streaming tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience import CircuitBreakerConfig, RetryConfig
from pixel_llm_otel.telemetry import PixelLLMInstrumentor

MODEL = "sim-model"
CHAT_SPAN = f"chat {MODEL}"
LONG = 30.0  # simulator stalls this long wait for the test to release them


class FakeEncoder:
    """A stand-in for the ViT: per-channel means as features."""

    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["mean rgb " + ", ".join(f"{v:.2f}" for v in row.tolist()) for row in features]


class ReleasableSleep:
    """The simulator's sleep: short delays are real, LONG ones wait until the test ends."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        if seconds >= LONG:
            await self.release.wait()
        else:
            await asyncio.sleep(seconds)


def errors(*, attempts: int = 3, threshold: int | None = 50, **fallback: Any) -> dict[str, Any]:
    """Fast resilience settings: millisecond backoff, a breaker that opens after ``threshold``."""
    return {
        "retry": RetryConfig(
            max_attempts=attempts, initial_delay=0.001, max_delay=0.005, jitter=False, deadline=10
        ),
        "circuit_breaker": CircuitBreakerConfig(
            failure_threshold=threshold, failure_rate_threshold=None, cooldown=30.0
        ),
        "fallback": fallback,
    }


@dataclass
class Captured:
    """Spans and metrics recorded by the instrumented package, plus double-end warnings."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    warnings: list[logging.LogRecord]

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found

    def count(self, metric: str, **attributes: Any) -> int:
        """Sum of a counter's values, or of a histogram's counts, over matching points."""
        total = 0
        for p in self.points(metric):
            if all(p.attributes.get(k.replace("__", ".")) == v for k, v in attributes.items()):
                total += getattr(p, "value", None) or getattr(p, "count", 0)
        return total


class _EndWarnings(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if "end" in record.getMessage() and "ended span" in record.getMessage():
            self.sink.append(record)


def instrument(**options: Any) -> tuple[Captured, Callable[[], None]]:
    """Instrument with in-memory exporters (``options``: more instrument() keywords); the second
    value undoes it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    instrumentor = PixelLLMInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider, meter_provider=meters, instrument_http=False, **options
    )
    warnings: list[logging.LogRecord] = []
    handler = _EndWarnings(warnings)
    sdk_log = logging.getLogger("opentelemetry.sdk.trace")
    sdk_log.addHandler(handler)

    def undo() -> None:
        sdk_log.removeHandler(handler)
        instrumentor.uninstrument()

    return Captured(exporter, reader, warnings), undo


def connections_in_use(llm: HybridPixelLLM) -> int:
    """Connections the pipeline's HTTP clients (one per loop) have handed out."""
    total = 0
    core = llm.async_pipeline._core
    for entry in list(core.loops._entries.values()):
        session = entry.value.client._session
        if session is not None and not session.closed:
            total += len(session.connector._acquired)
    return total


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.002)
