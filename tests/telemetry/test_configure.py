"""configure(): providers, resource, env vars, host providers, in-process exporters, shutdown."""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator

import pytest
from opentelemetry import _logs as otel_logs
from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from otel_support import REQUEST, RESPONSE, fresh_otel

import pixel_llm_otel
from pixel_llm_otel import hooks
from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.telemetry import PixelLLMInstrumentor, TelemetryHandle, configure


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* variables, no global providers, no active handle, before and after."""
    with fresh_otel(monkeypatch):
        yield


def _story() -> None:
    obs = hooks.get_observer()
    with obs.generate(model="qwen2-vl", batch_size=1, provider="lm_studio") as g:
        with obs.encode(encoder_type="vit", device="cpu", batch_size=1):
            pass
        with obs.chat(REQUEST) as c:
            c.response(RESPONSE)
        g.finish(outcome="success", attempts=1)


def _span_processors(handle: TelemetryHandle) -> tuple[object, ...]:
    return tuple(handle.tracer_provider._active_span_processor._span_processors)


def test_defaults_install_providers_and_export_nothing() -> None:
    """No endpoint: SDK providers with our resource, instrumentation on, no exporter at all."""
    handle = configure()
    assert handle.enabled
    assert handle.owned == ("metrics", "traces", "logs")
    assert trace.get_tracer_provider() is handle.tracer_provider
    assert metrics.get_meter_provider() is handle.meter_provider
    assert otel_logs.get_logger_provider() is handle.logger_provider
    assert _span_processors(handle) == ()
    assert tuple(handle.meter_provider._metric_readers) == ()
    attributes = handle.tracer_provider.resource.attributes
    assert attributes["service.name"] == "pixel-llm"
    assert attributes["service.version"] == pixel_llm_otel.__version__
    assert PixelLLMInstrumentor().is_instrumented_by_opentelemetry
    assert configure() is handle  # a second call returns the active handle


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        pytest.param({"OTEL_SERVICE_NAME": "captioner"}, None, "captioner", id="env"),
        pytest.param({"OTEL_RESOURCE_ATTRIBUTES": "service.name=ra"}, None, "ra", id="resource"),
        pytest.param({"OTEL_SERVICE_NAME": "captioner"}, "arg", "arg", id="argument-wins"),
    ],
)
def test_service_name_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], argument: str | None, expected: str
) -> None:
    """service.name: argument, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, then default."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", env.get("OTEL_RESOURCE_ATTRIBUTES", "team=vision")
    )
    handle = configure(service_name=argument)
    attributes = handle.tracer_provider.resource.attributes
    assert attributes["service.name"] == expected
    if "OTEL_RESOURCE_ATTRIBUTES" not in env:
        assert attributes["team"] == "vision"


def test_sampler_env_var_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_SAMPLER=always_off: the provider samples nothing."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    handle = configure()
    assert handle.tracer_provider.sampler is ALWAYS_OFF


def test_sdk_disabled_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true: no providers, no instrumentation, a disabled handle."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    handle = configure(span_exporter=InMemorySpanExporter())
    assert not handle.enabled
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not PixelLLMInstrumentor().is_instrumented_by_opentelemetry
    assert hooks.get_observer() is hooks.NOOP_OBSERVER


@pytest.mark.parametrize(
    ("protocol", "module"),
    [
        pytest.param("grpc", "opentelemetry.exporter.otlp.proto.grpc", id="grpc"),
        pytest.param("http/protobuf", "opentelemetry.exporter.otlp.proto.http", id="http"),
    ],
)
def test_protocol_env_picks_the_exporter(
    monkeypatch: pytest.MonkeyPatch, protocol: str, module: str
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT + _PROTOCOL: OTLP exporters of that protocol, bounded queue."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=vision")
    handle = configure(enable_logs=False)
    (processor,) = _span_processors(handle)
    exporter = processor.span_exporter.inner  # type: ignore[attr-defined]
    assert type(exporter).__module__.startswith(module)
    assert processor._batch_processor._max_queue_size == 2048  # type: ignore[attr-defined]
    (reader,) = handle.meter_provider._metric_readers
    assert type(reader._exporter).__module__.startswith(module)
    assert handle.owned == ("metrics", "traces")


def test_invalid_protocol_argument_raises() -> None:
    """A protocol other than grpc or http/protobuf names the field."""
    with pytest.raises(ValidationError, match="protocol"):
        configure(endpoint="http://127.0.0.1:9", protocol="thrift")


def test_host_providers_are_used_and_left_unchanged() -> None:
    """Real global providers from the host: used as they are, nothing added, nothing owned."""
    host_exporter = InMemorySpanExporter()
    host_traces = TracerProvider()
    host_traces.add_span_processor(SimpleSpanProcessor(host_exporter))
    host_reader = InMemoryMetricReader()
    host_metrics = MeterProvider(metric_readers=[host_reader])
    host_logs = LoggerProvider()
    trace.set_tracer_provider(host_traces)
    metrics.set_meter_provider(host_metrics)
    otel_logs.set_logger_provider(host_logs)
    processors_before = _span_processors_of(host_traces)

    handle = configure(span_exporter=InMemorySpanExporter())
    _story()

    assert handle.owned == ()
    assert trace.get_tracer_provider() is host_traces
    assert metrics.get_meter_provider() is host_metrics
    assert otel_logs.get_logger_provider() is host_logs
    assert _span_processors_of(host_traces) == processors_before
    assert sorted(s.name for s in host_exporter.get_finished_spans()) == [
        "chat qwen2-vl",
        "pixel_llm.encode",
        "pixel_llm.generate",
    ]
    handle.shutdown()
    assert host_traces.get_tracer("t").start_span("still-alive").is_recording()


def _span_processors_of(provider: TracerProvider) -> tuple[object, ...]:
    return tuple(provider._active_span_processor._span_processors)


def test_in_process_exporters_see_spans_metrics_and_correlated_logs() -> None:
    """Injected exporters: the story's spans, its metrics, and package logs with trace ids."""
    spans, reader, logs = (
        InMemorySpanExporter(),
        InMemoryMetricReader(),
        InMemoryLogRecordExporter(),
    )
    handle = configure(span_exporter=spans, metric_reader=reader, log_exporter=logs)
    package_logger = logging.getLogger("pixel_llm_otel.demo")
    package_logger.setLevel(logging.INFO)
    _story()
    with hooks.get_observer().generate(model="m", batch_size=1, provider="p") as g:
        package_logger.info("inside generate", extra={"image_id": "img-1"})
        trace_id = g.trace_id
    assert handle.force_flush()

    assert len(spans.get_finished_spans()) == 4
    names = {
        m.name
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"pixel_llm.generate.requests", "gen_ai.client.operation.duration"} <= names
    (record,) = [r.log_record for r in logs.get_finished_logs()]
    assert record.body == "inside generate"
    assert format(record.trace_id, "032x") == trace_id
    assert record.attributes is not None
    assert record.attributes["image_id"] == "img-1"

    handle.shutdown()
    assert not any(
        type(h).__name__ == "OTelLogHandler" for h in logging.getLogger("pixel_llm_otel").handlers
    )
    assert hooks.get_observer() is hooks.NOOP_OBSERVER


def test_structured_logger_records_are_exported_with_trace_ids() -> None:
    """StructuredLogger (a private, non-propagating logger) still reaches the OTLP log
    exporter, redacted, linked to the active span; after shutdown it no longer does."""
    logs = InMemoryLogRecordExporter()
    handle = configure(span_exporter=InMemorySpanExporter(), log_exporter=logs)
    with StructuredLogger("pixel_llm_otel.pipeline", stream=io.StringIO()) as log:
        with hooks.get_observer().generate(model="m", batch_size=1, provider="p") as g:
            log.warning("degraded, key sk-abcdef123456", error_code="ERR_HTTP_UNAVAILABLE")
            trace_id = g.trace_id
        assert handle.force_flush()
        (record,) = [r.log_record for r in logs.get_finished_logs()]
        assert "sk-abcdef123456" not in str(record.body)
        assert format(record.trace_id, "032x") == trace_id
        assert record.attributes is not None
        assert record.attributes["error_code"] == "ERR_HTTP_UNAVAILABLE"
        handle.shutdown()
        log.warning("after shutdown")
    assert len(logs.get_finished_logs()) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_collector_never_blocks_and_drops_are_counted() -> None:
    """A dead OTLP endpoint: scopes stay fast, the bounded queue drops, drops are visible."""
    reader = InMemoryMetricReader()
    handle = configure(
        endpoint=f"http://127.0.0.1:{_closed_port()}",
        protocol="http/protobuf",
        export_timeout=0.5,
        max_queue_size=16,
        metric_reader=reader,
        enable_logs=False,
    )
    start = time.perf_counter()
    for _ in range(300):
        _story()
    elapsed = time.perf_counter() - start

    # Not a speed check (benchmarks/bench_dead_collector.py measures that): a span end that
    # waited for the exporter, even once per queue fill (16 spans), would add >= 56 x 0.5 s.
    assert elapsed < 15.0, f"900 spans took {elapsed:.2f}s with a dead collector"
    stats = handle.dropped()
    assert stats.tracked
    assert stats.spans > 0
    dropped = [
        p
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "pixel_llm.telemetry.dropped"
        for p in m.data.data_points
    ]
    seen = {(p.attributes["pixel_llm.telemetry.signal"], p.attributes["error.type"]): p.value
            for p in dropped}  # fmt: skip
    assert sum(seen.values()) == stats.spans  # queue full while the first export waits; export
    # failed once it gave up (then batches fail fast, so the queue may never fill again)
    assert {reason for _, reason in seen} <= {"queue_full", "export_failed"}
    start = time.perf_counter()
    handle.shutdown()
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("env", "kwargs", "expected"),
    [
        pytest.param({}, {}, (2048, 128), id="default"),
        pytest.param({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"}, {}, (2048, 512), id="env-batch"),
        pytest.param({"OTEL_BSP_MAX_QUEUE_SIZE": "64"}, {}, (64, 64), id="env-small-queue"),
        pytest.param({}, {"max_queue_size": 16}, (16, 16), id="small-queue-arg"),
    ],
)
def test_span_export_batches_default_small_and_follow_env(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    kwargs: dict[str, int],
    expected: tuple[int, int],
) -> None:
    """Export batches of 128 spans (queued spans die young); OTEL_BSP_* and the queue bound win."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    handle = configure(span_exporter=InMemorySpanExporter(), enable_logs=False, **kwargs)
    (processor,) = _span_processors(handle)
    batch = processor._batch_processor  # type: ignore[attr-defined]
    assert (batch._max_queue_size, batch._max_export_batch_size) == expected
