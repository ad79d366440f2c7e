"""StructuredLogger and JsonFormatter: JSON lines, trace ids, redaction, a non-blocking queue."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from pixel_llm_otel.errors import ErrorCode, TimeoutError, ValidationError
from pixel_llm_otel.monitoring import JsonFormatter, StructuredLogger, TraceContextFilter
from pixel_llm_otel.monitoring.testing import capture_logs

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def log(out: io.StringIO) -> Iterator[StructuredLogger]:
    logger = StructuredLogger("pixel_llm.test", level="DEBUG", stream=out)
    yield logger
    logger.close()


def _lines(log: StructuredLogger, out: io.StringIO) -> list[dict[str, Any]]:
    assert log.flush(timeout=5)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_each_level_writes_one_json_line(
    log: StructuredLogger, out: io.StringIO, level: str
) -> None:
    """Every level writes the documented keys with a UTC millisecond timestamp."""
    getattr(log, level)(
        "hello %s", "world", error_code=ErrorCode.TIMEOUT_READ, context={"attempt": 2}
    )
    (line,) = _lines(log, out)
    assert TIMESTAMP.match(line["timestamp"])
    assert line["level"] == level.upper()
    assert line["logger"] == "pixel_llm.test"
    assert line["message"] == "hello world"
    assert line["error_code"] == "ERR_TIMEOUT_READ"
    assert line["context"] == {"attempt": 2}
    assert "stack_trace" not in line
    assert "trace_id" not in line


def test_exception_adds_classified_code_type_and_stack_trace(
    log: StructuredLogger, out: io.StringIO
) -> None:
    """exception() records the traceback and classifies a foreign exception's code."""
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        log.exception("LLM call failed")
    (line,) = _lines(log, out)
    assert line["level"] == "ERROR"
    assert line["error_code"] == "ERR_CONNECTION_REFUSED"
    assert line["error_type"] == "ConnectionRefusedError"
    assert line["stack_trace"].startswith("Traceback (most recent call last)")
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in line["stack_trace"]


def test_exc_info_with_our_error_and_an_explicit_code(
    log: StructuredLogger, out: io.StringIO
) -> None:
    """A PixelLMError gives its own code; an explicit error_code wins over it."""
    err = TimeoutError(code=ErrorCode.TIMEOUT_READ)
    log.error("first", exc_info=err)
    log.error("second", exc_info=err, error_code="ERR_RETRY_EXHAUSTED")
    first, second = _lines(log, out)
    assert first["error_code"] == "ERR_TIMEOUT_READ"
    assert second["error_code"] == "ERR_RETRY_EXHAUSTED"


def test_trace_and_span_ids_of_the_active_span(log: StructuredLogger, out: io.StringIO) -> None:
    """Inside a span the line carries its ids (read on the caller's thread), outside none."""
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("generate") as span:
        log.info("inside")
        ctx = span.get_span_context()
    log.info("outside")
    inside, outside = _lines(log, out)
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")
    assert "trace_id" not in outside


def test_secrets_are_redacted_everywhere(log: StructuredLogger, out: io.StringIO) -> None:
    """Secret keys at any depth, Bearer tokens, sk- keys and URL passwords never reach output."""
    log.warning(
        "calling with Authorization: Bearer abc.def-123 and key sk-abcdefghijkl0123",
        context={
            "api_key": "k1",
            "headers": {"Authorization": "Bearer xyz", "Accept": "json"},
            "items": [{"password": "p"}, "Bearer qqq"],
            "url": "http://user:hunter2@localhost:1234/v1",
            "refresh_token": "t",
        },
    )
    (line,) = _lines(log, out)
    text = json.dumps(line)
    for secret in ("k1", "xyz", "abc.def-123", "sk-abcdefghijkl0123", "hunter2", "qqq", '"p"'):
        assert secret not in text
    assert line["context"]["headers"] == {"Authorization": "[REDACTED]", "Accept": "json"}
    assert line["context"]["url"] == "http://[REDACTED]@localhost:1234/v1"
    assert line["context"]["refresh_token"] == "[REDACTED]"


def test_context_is_snapshotted_when_logging(log: StructuredLogger, out: io.StringIO) -> None:
    """Changing the dict after the call does not change the line written later."""
    ctx: dict[str, Any] = {"n": 1}
    log.info("x", context=ctx)
    ctx["n"] = 2
    (line,) = _lines(log, out)
    assert line["context"] == {"n": 1}


def test_extra_context_bind_and_override(out: io.StringIO) -> None:
    """extra_context and bind() add to every record; per-call context wins."""
    with StructuredLogger("svc", stream=out, extra_context={"service": "cap", "v": 1}) as base:
        child = base.bind(request="r1")
        child.info("a", context={"v": 2})
        base.info("b")
        assert base.flush()
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first["context"] == {"service": "cap", "v": 2, "request": "r1"}
    assert second["context"] == {"service": "cap", "v": 1}


def test_tensors_in_context_are_described(log: StructuredLogger, out: io.StringIO) -> None:
    """A tensor in the context is logged by shape and dtype, not element by element."""
    torch = pytest.importorskip("torch")
    log.info("encoded", context={"features": torch.zeros(2, 768)})
    (line,) = _lines(log, out)
    assert line["context"]["features"] == "Tensor(shape=(2, 768), dtype=torch.float32)"


def test_level_filters_before_queueing(out: io.StringIO) -> None:
    """Records below the level are not written and cost no queue slot."""
    with StructuredLogger("lvl", level="WARNING", stream=out) as log:
        log.info("no")
        log.debug("no")
        log.warning("yes")
        assert log.flush()
        assert log.is_enabled_for("ERROR")
        assert not log.is_enabled_for(logging.INFO)
    assert [json.loads(x)["message"] for x in out.getvalue().splitlines()] == ["yes"]


class _BlockedHandler(logging.Handler):
    """A handler whose first emit blocks until released, like a stuck disk or pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.unblock = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entered.set()
        assert self.unblock.wait(10)
        self.messages.append(record.getMessage())


def test_full_queue_drops_and_counts_without_blocking() -> None:
    """With the writer stuck, calls return at once; what does not fit is dropped and counted."""
    handler = _BlockedHandler()
    log = StructuredLogger("slow", stream=handler, queue_size=5)
    try:
        log.info("m0")
        assert handler.entered.wait(5)  # the writer holds m0 and is stuck in emit
        caller = threading.Thread(target=lambda: [log.info("m%d", i) for i in range(1, 21)])
        caller.start()
        caller.join(30)  # a deadline for a broken run only: the writer stays stuck throughout
        assert not caller.is_alive(), "log calls blocked behind the stuck writer"
        assert not handler.unblock.is_set()
        assert log.dropped == 15
        handler.unblock.set()
        assert log.flush(timeout=5)
        assert handler.messages == [f"m{i}" for i in range(6)]
    finally:
        handler.unblock.set()
        log.close()


def test_close_flushes_is_idempotent_and_later_records_are_dropped(out: io.StringIO) -> None:
    """close() writes everything queued; records after it are counted as dropped."""
    log = StructuredLogger("closing", stream=out)
    for i in range(50):
        log.info("n%d", i)
    log.close()
    log.close()
    assert len(out.getvalue().splitlines()) == 50
    log.info("late")
    assert log.dropped == 1
    assert len(out.getvalue().splitlines()) == 50


def test_close_gives_up_on_a_stuck_handler() -> None:
    """close() returns after its timeout even when the handler never finishes writing."""
    handler = _BlockedHandler()
    log = StructuredLogger("stuck", stream=handler, queue_size=2)
    try:
        for i in range(4):
            log.info("m%d", i)
        assert handler.entered.wait(5)
        start = time.perf_counter()
        log.close(timeout=0.2)
        assert time.perf_counter() - start < 2.0
        assert not log.flush(timeout=0.05)
    finally:
        handler.unblock.set()


def test_many_threads_each_line_is_whole_json(out: io.StringIO) -> None:
    """8 threads x 200 records: 1600 complete JSON lines, none lost or interleaved."""
    with StructuredLogger("threads", stream=out, queue_size=10_000) as log:

        def work(n: int) -> None:
            for i in range(200):
                log.info("t%d-%d", n, i, context={"thread": n})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.flush()
        assert log.dropped == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 1600
    assert len({line["message"] for line in lines}) == 1600


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level": "LOUD"}, "level"),
        ({"level": -1}, "level"),
        ({"stream": 42}, "stream"),
        ({"queue_size": 0}, "queue_size"),
        ({"extra_context": ["a"]}, "extra_context"),
    ],
    ids=["level-name", "level-negative", "stream", "queue-size", "extra-context"],
)
def test_bad_arguments_raise_validation_errors(kwargs: dict[str, Any], field: str) -> None:
    """Misconfiguration names the argument."""
    with pytest.raises(ValidationError) as info:
        StructuredLogger("bad", **kwargs)
    assert info.value.field == field


def test_json_formatter_on_a_plain_stdlib_handler() -> None:
    """JsonFormatter works on any handler; extra= fields fill error_code and context."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("pixel_llm.stdlib_test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "slow %s",
            "model",
            extra={
                "error_code": "ERR_TIMEOUT_READ",
                "context": {"a": 1},
                "model": "qwen",
                "api_key": "nope",
            },
        )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "slow model"
    assert line["error_code"] == "ERR_TIMEOUT_READ"
    assert line["context"] == {"a": 1, "model": "qwen", "api_key": "[REDACTED]"}


def test_capture_logs_collects_dicts_synchronously(out: io.StringIO) -> None:
    """capture_logs() gathers the records as dicts on the caller's thread; nothing is written."""
    with StructuredLogger("cap", stream=out) as log, capture_logs() as logs:
        log.info("one", context={"token": "t"})
        try:
            raise KeyError("choices")
        except KeyError:
            log.exception("two")
        log.debug("filtered by level")
    assert [x["message"] for x in logs] == ["one", "two"]
    assert logs[0]["context"] == {"token": "[REDACTED]"}
    assert logs[1]["error_code"] == "ERR_UNKNOWN"
    assert "KeyError" in logs[1]["stack_trace"]
    assert out.getvalue() == ""


def test_default_stream_is_stderr_at_write_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no stream, records go to the ``sys.stderr`` of when they are written, not built."""
    built_with = io.StringIO()
    monkeypatch.setattr("sys.stderr", built_with)
    logger = StructuredLogger("late-stderr")
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    built_with.close()  # a captured stream closed by its owner must not break logging
    try:
        logger.warning("hello")
        logger.flush()
    finally:
        logger.close()
    assert json.loads(later.getvalue())["message"] == "hello"
