"""Forward every StructuredLogger record, redacted, to extra stdlib handlers.

A ``StructuredLogger`` writes through a private logger that does not propagate (two loggers of the
same name must not share handlers), so a handler attached to the ``logging`` hierarchy never sees
its records. Forwarders are how other sinks get them: ``pixel_llm_otel.telemetry.configure()``
registers its OTLP log handler here, so the JSON log records are exported over OTLP too.

Forwarders run on the caller's thread (so the active span links the record to its trace) and
must not block; the OTel SDK's batch processor only enqueues. They get a copy of the record with
the message and context redacted and the context's scalar entries as ``context.<key>`` fields.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ._json import prepare_record, redact

__all__ = ["ForwardingHandler", "add_log_forwarder", "log_forwarders", "remove_log_forwarder"]

_lock = threading.Lock()
_forwarders: tuple[logging.Handler, ...] = ()


def add_log_forwarder(handler: logging.Handler) -> None:
    """Also hand every StructuredLogger record to ``handler`` (idempotent)."""
    global _forwarders
    if not isinstance(handler, logging.Handler):
        from ..errors import ValidationError

        raise ValidationError(field="handler", value=handler, expected="a logging.Handler")
    with _lock:
        if handler not in _forwarders:
            _forwarders = (*_forwarders, handler)


def remove_log_forwarder(handler: logging.Handler) -> None:
    """Stop forwarding to ``handler``; a no-op if it was not registered."""
    global _forwarders
    with _lock:
        _forwarders = tuple(h for h in _forwarders if h is not handler)


def log_forwarders() -> tuple[logging.Handler, ...]:
    """The registered forwarders."""
    return _forwarders


class ForwardingHandler(logging.Handler):
    """Attached to every StructuredLogger's private logger; fans records out to the forwarders."""

    def emit(self, record: logging.LogRecord) -> None:
        forwarders = _forwarders  # replaced, never mutated: no lock needed
        if not forwarders:
            return
        copy = _redacted_copy(record)
        for handler in forwarders:
            if copy.levelno >= handler.level:
                handler.handle(copy)


def _redacted_copy(record: logging.LogRecord) -> logging.LogRecord:
    prepare_record(record)  # trace ids, error code/type and a redacted context, on this thread
    fields: dict[str, Any] = dict(record.__dict__)
    fields["msg"] = redact(record.getMessage())
    fields["args"] = None
    context = fields.get("context")
    if isinstance(context, dict):
        for key, value in context.items():
            if isinstance(value, (str, bool, int, float)):
                fields[f"context.{key}"] = value
    return logging.makeLogRecord(fields)


#: The one instance every private logger carries.
FORWARDER = ForwardingHandler()
