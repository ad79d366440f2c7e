"""``configure()``: one call sets up traces, metrics and logs, and instruments the package.

Standard ``OTEL_*`` variables are honoured (the SDK and exporters read most of them themselves);
arguments win over the environment. A signal whose global provider the host already installed is
left exactly as the host set it up: we use that provider and add nothing to it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from .._version import __version__
from ..errors import ValidationError
from ..monitoring import add_log_forwarder, remove_log_forwarder
from . import _names as n
from ._dropped import EXPORT_FAILED, DroppedStats, DroppedTelemetry
from ._export_guard import GuardedExporter, SheddingLogProcessor, SheddingSpanProcessor
from ._exporters import DEFAULT_TIMEOUT_S, ExportSettings, build_exporter, parse_headers
from ._instrumentor import PixelLLMInstrumentor
from ._logs import OTelLogHandler

__all__ = ["DEFAULT_SERVICE_NAME", "TelemetryHandle", "configure"]

DEFAULT_SERVICE_NAME = "pixel-llm"
#: Spans per export batch unless ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` says otherwise (the SDK's
#: default is 512). Queued spans live until their batch is exported; at 512 (~128 generate calls)
#: they outlive two young-generation collections and are promoted to the oldest generation, whose
#: full collections walk the whole heap (~100-150 ms with torch loaded, every ~3,000 calls). At
#: 128 they die young: no full collections in 6,000 calls, ~40 us/call less GC, and the same
#: process CPU with OTLP/HTTP export to a local collector.
DEFAULT_EXPORT_BATCH_SIZE = 128
_PACKAGE_LOGGER = "pixel_llm_otel"
_log = logging.getLogger("pixel_llm_otel.telemetry")


def _placeholder_types() -> tuple[type, ...]:
    """The API's stand-ins for "no provider installed": proxies and no-ops of each signal."""
    from opentelemetry._logs import NoOpLoggerProvider
    from opentelemetry._logs._internal import ProxyLoggerProvider
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    return (
        trace.ProxyTracerProvider,
        trace.NoOpTracerProvider,
        _ProxyMeterProvider,
        NoOpMeterProvider,
        ProxyLoggerProvider,
        NoOpLoggerProvider,
    )


def _is_set(provider: object) -> bool:
    """Whether a global provider is a real one the host installed (not a proxy or no-op)."""
    return not isinstance(provider, _placeholder_types())


@dataclass
class TelemetryHandle:
    """What :func:`configure` set up; ``shutdown()`` flushes and undoes it."""

    enabled: bool
    tracer_provider: Any = None
    meter_provider: Any = None
    logger_provider: Any = None
    owned: tuple[str, ...] = ()  # signals whose providers we created ("traces", "metrics", "logs")
    #: the longest :meth:`shutdown` takes by default: the export timeout given to configure()
    shutdown_timeout: float = DEFAULT_TIMEOUT_S
    _dropped: DroppedTelemetry = field(default_factory=DroppedTelemetry, repr=False)
    _processors: list[Any] = field(default_factory=list, repr=False)
    _log_handler: logging.Handler | None = field(default=None, repr=False)
    _instrumented: bool = field(default=False, repr=False)

    def dropped(self) -> DroppedStats:
        """Spans and log records lost before reaching the collector: dropped from a full queue,
        after shutdown, or in a batch the exporter failed to deliver (``export_failed``)."""
        return self._dropped.stats()

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        """Export what is buffered in the providers we own; ``False`` if anything timed out."""
        ok = True
        for signal, provider in self._owned_providers():
            try:
                ok = bool(provider.force_flush(timeout_millis)) and ok
            except Exception:
                _log.warning("force_flush of %s failed", signal, exc_info=True)
                ok = False
        return ok

    def shutdown(self, timeout: float | None = None) -> None:
        """Uninstrument, detach the log handler, shut down the providers we own.

        Returns within ``timeout`` seconds (default :attr:`shutdown_timeout`, the export timeout)
        plus a few milliseconds, whatever the collector does: what is still queued is exported
        until the budget runs out, then counted as ``export_failed`` and left behind.
        """
        global _active
        budget = self.shutdown_timeout if timeout is None else max(0.0, float(timeout))
        deadline = time.monotonic() + budget
        if self._instrumented:
            PixelLLMInstrumentor().uninstrument()
            self._instrumented = False
        if self._log_handler is not None:
            logging.getLogger(_PACKAGE_LOGGER).removeHandler(self._log_handler)
            remove_log_forwarder(self._log_handler)
            self._log_handler = None
        for processor in self._processors:  # the batch processors first, each within budget
            _shutdown_processor(processor, deadline, self._dropped)
        for signal, provider in self._owned_providers():
            try:
                if signal == "metrics":
                    provider.shutdown(timeout_millis=_millis_left(deadline))
                else:  # their batch processors are shut down already: this returns at once
                    provider.shutdown()
            except Exception:
                _log.warning("shutdown of %s failed", signal, exc_info=True)
        self._processors = []
        self.owned = ()
        with _lock:
            if _active is self:
                _active = None

    def _owned_providers(self) -> list[tuple[str, Any]]:
        providers = {
            "traces": self.tracer_provider,
            "metrics": self.meter_provider,
            "logs": self.logger_provider,
        }
        return [(s, providers[s]) for s in self.owned if providers[s] is not None]


def _millis_left(deadline: float) -> float:
    return max(0.0, (deadline - time.monotonic()) * 1000)


def _shutdown_processor(processor: Any, deadline: float, dropped: DroppedTelemetry) -> None:
    """Shut a batch processor down within ``deadline``; count what it left queued."""
    batch = getattr(processor, "_batch_processor", None)
    signal = "logs" if isinstance(processor, BatchLogRecordProcessor) else "traces"
    try:
        if batch is None or not callable(getattr(batch, "shutdown", None)):
            processor.shutdown()  # an SDK without the internal: its own (30 s) bound
            return
        batch.shutdown(timeout_millis=_millis_left(deadline))
        left = len(getattr(batch, "_queue", ()))
        if left:
            dropped.add(signal, EXPORT_FAILED, left)
    except Exception:
        _log.warning("shutdown of a %s processor failed", signal, exc_info=True)


def _guarded(
    exporter: Any, signal: str, handle: TelemetryHandle, *, fail_fast: bool
) -> GuardedExporter:
    """``exporter`` wrapped to count what it fails to deliver (and, for a network exporter, to
    fail fast while its collector is down: see _export_guard)."""
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    results: Any = SpanExportResult if signal == "traces" else LogRecordExportResult
    return GuardedExporter(
        exporter,
        signal=signal,
        success=results.SUCCESS,
        failure=results.FAILURE,
        on_failed=handle._dropped.counter(signal, EXPORT_FAILED),
        fail_fast=fail_fast,
    )


_lock = threading.Lock()
_active: TelemetryHandle | None = None


def _seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ValidationError(field=name, value=value, expected="a positive duration")
    return seconds


def _resource(service_name: str | None, attributes: Mapping[str, Any] | None) -> Resource:
    resource = Resource.create({SERVICE_VERSION: __version__, **dict(attributes or {})})
    if service_name is not None:
        return resource.merge(Resource({SERVICE_NAME: service_name}))
    current = str(resource.attributes.get(SERVICE_NAME, ""))
    if not current or current.startswith("unknown_service"):
        return resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: str | Mapping[str, str] | None = None,
    sampler: Sampler | None = None,
    export_interval: float | timedelta | None = None,
    export_timeout: float | timedelta | None = None,
    enable_logs: bool = True,
    resource_attributes: Mapping[str, Any] | None = None,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    metric_readers: Sequence[MetricReader] = (),
    log_exporter: LogRecordExporter | None = None,
    capture_content: bool | str | None = None,
    max_queue_size: int | None = None,
) -> TelemetryHandle:
    """Set up OpenTelemetry for pixel-llm-otel and instrument it. Returns a handle.

    Without an endpoint (argument or ``OTEL_EXPORTER_OTLP_ENDPOINT``) nothing is exported over the
    network; ``span_exporter`` / ``metric_reader`` / ``log_exporter`` add in-process exporters
    (e.g. the SDK's in-memory ones, to print a trace tree). ``OTEL_SDK_DISABLED=true`` makes this a
    no-op. Calling it again while a handle is active returns that handle. ``capture_content``:
    ``no_content`` | ``span_only`` | ``event_only`` | ``span_and_event`` (default: the
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` variable); the content event goes through
    the logger provider set up here (``enable_logs``).
    """
    global _active
    with _lock:
        if _active is not None:
            _log.warning("telemetry already configured; returning the active handle")
            return _active
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            _active = TelemetryHandle(enabled=False)
            return _active
        if max_queue_size is not None and max_queue_size < 1:
            raise ValidationError(field="max_queue_size", value=max_queue_size, expected=">= 1")
        settings = ExportSettings(
            endpoint=endpoint,
            protocol=protocol,
            headers=parse_headers(headers),
            timeout=_seconds(export_timeout, "export_timeout"),
        )
        interval = _seconds(export_interval, "export_interval")
        env_batch = os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        batch_size = int(env_batch) if env_batch else DEFAULT_EXPORT_BATCH_SIZE
        queue_size = max_queue_size or int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE") or 2048)
        batch_size = min(batch_size, queue_size)  # a batch never larger than the queue (SDK rule)
        resource = _resource(service_name, resource_attributes)
        handle = TelemetryHandle(
            enabled=True, shutdown_timeout=settings.timeout or DEFAULT_TIMEOUT_S
        )
        owned: list[str] = []

        meter_provider: Any = metrics.get_meter_provider()
        if not _is_set(meter_provider):
            readers = [*metric_readers, *([metric_reader] if metric_reader is not None else [])]
            exporter = build_exporter(settings, "metrics")
            if exporter is not None:
                millis = interval * 1000 if interval is not None else None
                readers.append(PeriodicExportingMetricReader(exporter, millis))
            filter_kwargs: dict[str, Any] = {}
            if not os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER"):
                filter_kwargs["exemplar_filter"] = TraceBasedExemplarFilter()
            meter_provider = MeterProvider(
                metric_readers=readers, resource=resource, **filter_kwargs
            )
            metrics.set_meter_provider(meter_provider)
            owned.append("metrics")

        tracer_provider: Any = trace.get_tracer_provider()
        if not _is_set(tracer_provider):
            tracer_provider = TracerProvider(resource=resource, sampler=sampler)
            for exp, network in (
                (span_exporter, False),
                (build_exporter(settings, "traces"), True),
            ):
                if exp is not None:
                    processor = SheddingSpanProcessor(
                        _guarded(exp, "traces", handle, fail_fast=network),
                        max_queue_size=max_queue_size,
                        max_export_batch_size=batch_size,
                    )
                    handle._dropped.attach(processor, "traces")
                    handle._processors.append(processor)
                    tracer_provider.add_span_processor(processor)
            trace.set_tracer_provider(tracer_provider)
            owned.append("traces")

        logger_provider: Any = get_logger_provider() if enable_logs else None
        if enable_logs and not _is_set(logger_provider):
            logger_provider = LoggerProvider(resource=resource)
            for exp, network in (
                (log_exporter, False),
                (build_exporter(settings, "logs"), True),
            ):
                if exp is not None:
                    log_processor = SheddingLogProcessor(
                        _guarded(exp, "logs", handle, fail_fast=network)
                    )
                    handle._dropped.attach(log_processor, "logs")
                    handle._processors.append(log_processor)
                    logger_provider.add_log_record_processor(log_processor)
            set_logger_provider(logger_provider)
            owned.append("logs")
            handle._log_handler = OTelLogHandler(logger_provider)
            logging.getLogger(_PACKAGE_LOGGER).addHandler(handle._log_handler)
            # StructuredLogger's private loggers do not propagate: they forward instead
            add_log_forwarder(handle._log_handler)

        handle.tracer_provider, handle.meter_provider = tracer_provider, meter_provider
        handle.logger_provider, handle.owned = logger_provider, tuple(owned)
        handle._dropped.register(meter_provider.get_meter(n.SCOPE_NAME, __version__))
        instrumentor = PixelLLMInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
                capture_content=capture_content,
            )
            handle._instrumented = instrumentor.is_instrumented_by_opentelemetry
        _active = handle
        return handle
