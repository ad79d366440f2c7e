"""Secrets echoed by a hostile server never reach an exception, a log line, a span or a metric.

The server puts what it received (``Authorization: Bearer <key>``, the bare key, the key in a
URL's user info, in a redirect, in a garbage status line, in a caption) into its reply. With the
package instrumented into in-memory exporters (spans, metrics, OTel logs; HTTP client spans and
content capture on) and the structured logs captured, the key appears nowhere.
"""

from __future__ import annotations

import io
import json
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
from hostile import HostileServer
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import call, make_llm

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.errors import PixelLMError
from pixel_llm_otel.monitoring import add_log_forwarder, remove_log_forwarder
from pixel_llm_otel.monitoring.testing import capture_logs
from pixel_llm_otel.telemetry import PixelLLMInstrumentor
from pixel_llm_otel.telemetry._logs import OTelLogHandler

KEYS = {
    "short": "abc123",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.dGhpcy1pcy1hLXNpZw",
    "base64": "Zm9v+YmFy/YmF6==",
}
SCENARIOS = [
    "echo-headers",
    "echo-plain",
    "echo-ok-body",
    "echo-status-line",
    "echo-redirect",
    "echo-too-large",
    "echo-ok-caption",
]


@dataclass
class Exported:
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader

    def texts(self) -> list[str]:
        found = [span.to_json() for span in self.spans.get_finished_spans()]
        found += [data.log_record.to_json() for data in self.logs.get_finished_logs()]
        data = self.metrics.get_metrics_data()
        if data is not None:
            found.append(data.to_json())
        return found


@pytest.fixture
def exported() -> Iterator[Exported]:
    """The package instrumented (HTTP spans and content capture on) into in-memory exporters."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = OTelLogHandler(logger_provider)
    add_log_forwarder(handler)
    instrumentor = PixelLLMInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        capture_content=True,
    )
    try:
        yield Exported(spans, logs, reader)
    finally:
        instrumentor.uninstrument()
        remove_log_forwarder(handler)


def _exception_texts(error: BaseException | None) -> list[str]:
    """Everything a caller, a logger or a span could render of ``error`` and its chain."""
    if error is None:
        return []
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        if isinstance(current, PixelLMError):
            texts.append(json.dumps(current.to_dict(), default=str))
            texts.append(str(getattr(current, "body_excerpt", "")))
        current = current.__cause__ or current.__context__
    return texts


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_an_echoed_key_is_absent_everywhere(
    hostile: HostileServer,
    image: torch.Tensor,
    exported: Exported,
    key: str,
    scenario: str,
    flavour: str,
) -> None:
    """The key the server echoes is in no exception, log record, span, OTel log or metric."""
    stream = io.StringIO()
    llm = make_llm(hostile.url(scenario), "raise", stream, api_key=key)
    with capture_logs() as logs:
        done = call(llm, flavour, "raise", image)
    assert hostile.seen(scenario)[-1].headers["authorization"] == f"Bearer {key}"  # it had it
    texts = _exception_texts(done.error)
    texts += [json.dumps(record, default=str) for record in logs]
    texts += exported.texts()
    texts.append(stream.getvalue())
    if done.result is not None:
        texts.append(str(done.result.text))
    assert texts, "nothing was recorded"
    assert logs or done.result is not None, "a failure must have been logged"
    leaks = [text for text in texts if key in text]
    assert leaks == []
    if scenario != "echo-too-large":  # that body is never read far enough to quote
        assert any("[REDACTED]" in text for text in texts)  # the echo arrived, scrubbed


@pytest.mark.parametrize("password", ["pa55-w0rd+=", "pa55/w0rd"], ids=["plain", "with-slash"])
def test_a_url_password_is_never_echoed(
    hostile: HostileServer, image: torch.Tensor, password: str
) -> None:
    """A base URL with user:password@ fails typed without the password in any message or log."""
    url = f"http://user:{password}@127.0.0.1:{hostile.port}/ok/v1"
    with pytest.raises(PixelLMError) as caught:
        LMStudioClient(url)
    assert password not in "".join(_exception_texts(caught.value))
    stream = io.StringIO()
    with capture_logs() as logs:
        try:
            llm = make_llm(url, "raise", stream)
        except PixelLMError as exc:  # rejected at construction
            error: BaseException | None = exc
        else:
            error = call(llm, "sync", "raise", image).error
    assert isinstance(error, PixelLMError)
    texts = [*_exception_texts(error), stream.getvalue()]
    texts += [json.dumps(record, default=str) for record in logs]
    assert [text for text in texts if password in text] == []


@pytest.mark.parametrize("ours", [False, True], ids=["host-only", "host-and-ours"])
@pytest.mark.parametrize("scenario", ["echo-status-line", "echo-headers"])
async def test_a_hosts_aiohttp_spans_never_hold_the_key(
    hostile: HostileServer, scenario: str, ours: bool
) -> None:
    """A host's aiohttp instrumentation (wrapping ``ClientSession``) records no echoed key."""
    key = KEYS["jwt"]
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    host = AioHttpClientInstrumentor()
    host.instrument(tracer_provider=tracer_provider)
    instrumentor = PixelLLMInstrumentor()
    if ours:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    try:
        async with LMStudioClient(hostile.url(scenario), api_key=key) as client:
            with pytest.raises(PixelLMError) as caught:
                await client.chat([{"role": "user", "content": "hi"}], model="m")
    finally:
        host.uninstrument()
        if ours:
            instrumentor.uninstrument()
    texts = [span.to_json() for span in spans.get_finished_spans()]
    assert len(texts) == 1  # one POST span: the host's, or ours with the host's suppressed
    assert [text for text in texts + _exception_texts(caught.value) if key in text] == []
    if scenario == "echo-status-line":  # the failed request's exception is on the span
        assert "exception" in texts[0]
        assert "[REDACTED]" in texts[0]
