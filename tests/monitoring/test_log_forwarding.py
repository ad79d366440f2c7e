"""StructuredLogger records reach registered forwarders (how telemetry exports them over OTLP)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.monitoring import StructuredLogger, add_log_forwarder, remove_log_forwarder


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sink() -> Iterator[_Collect]:
    handler = _Collect()
    add_log_forwarder(handler)
    yield handler
    remove_log_forwarder(handler)


def test_records_are_forwarded_redacted_with_context_fields(sink: _Collect) -> None:
    """A forwarder gets each record once, message and context redacted, scalars flattened."""
    with StructuredLogger("fwd", stream=io.StringIO()) as log:
        log.warning(
            "call with Authorization: Bearer sk-secret123 failed",
            error_code="ERR_TIMEOUT_READ",
            context={"attempts": 3, "api_key": "sk-secret123", "url": "http://h/v1"},
        )
    [record] = sink.records
    assert "sk-secret123" not in record.getMessage()
    assert record.__dict__["context.attempts"] == 3
    assert record.__dict__["context.api_key"] == "[REDACTED]"
    assert record.__dict__["error_code"] == "ERR_TIMEOUT_READ"
    assert record.levelno == logging.WARNING


def test_forwarding_happens_on_the_callers_thread_with_the_active_span(sink: _Collect) -> None:
    """The forwarded record carries the trace and span ids of the span active at the call."""
    tracer = TracerProvider().get_tracer("t")
    with (
        StructuredLogger("fwd", stream=io.StringIO()) as log,
        tracer.start_as_current_span("s") as span,
    ):
        log.error("boom")
        ctx = span.get_span_context()
    [record] = sink.records
    assert record.__dict__["trace_id"] == format(ctx.trace_id, "032x")
    assert record.__dict__["span_id"] == format(ctx.span_id, "016x")


def test_removed_forwarder_gets_nothing_and_levels_apply(sink: _Collect) -> None:
    """Below the forwarder's level nothing is sent; after removal nothing at all."""
    sink.setLevel(logging.ERROR)
    with StructuredLogger("fwd", stream=io.StringIO()) as log:
        log.warning("quiet")
        log.error("loud")
        remove_log_forwarder(sink)
        log.error("after removal")
    assert [r.getMessage() for r in sink.records] == ["loud"]


def test_a_forwarder_must_be_a_handler() -> None:
    """Registering something that is not a logging.Handler names the field."""
    with pytest.raises(ValidationError, match="handler"):
        add_log_forwarder(print)  # type: ignore[arg-type]
