"""JSON rendering of log records: the record layout, secret redaction and trace ids.

One JSON object per line::

    {"timestamp": "2025-01-31T12:00:00.123Z", "level": "ERROR", "logger": "pixel_llm",
     "message": "...", "error_code": "ERR_TIMEOUT_READ", "context": {...},
     "error_type": "TimeoutError", "stack_trace": "Traceback ...",
     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}

``error_code`` and ``context`` are always present (``null`` / ``{}`` when empty); ``error_type``
and ``stack_trace`` only for records with an exception; ``trace_id``/``span_id`` only while an
OpenTelemetry span is active (read through ``opentelemetry-api``, imported lazily and optional).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..errors import DEFAULT_CLASSIFIER, PixelLMError
from ..errors.exceptions import _short_repr

__all__ = ["REDACTED", "JsonFormatter", "TraceContextFilter", "redact"]

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(
    r"(api[-_]?key|authorization|token|password|passwd|secret|cookie|credential)", re.IGNORECASE
)
_SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
)
#: Attributes every LogRecord has; anything else set through ``extra=`` goes into ``context``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {
        "message",
        "asctime",
        "taskName",
        "error_code",
        "context",
        "trace_id",
        "span_id",
        "error_type",
        "_pixel_prepared",
    }
)
_MAX_DEPTH = 8


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secrets replaced by ``[REDACTED]``.

    Mapping entries whose key looks like a secret (api_key, authorization, token, password...)
    are replaced whole, at any depth; Bearer/Basic credentials, ``sk-`` keys and passwords in
    URLs are cut out of strings. Containers are copied, other objects kept as they are.
    """
    if isinstance(value, str):
        for pattern, replacement in _SECRET_TEXT:
            value = pattern.sub(replacement, value)
        return value
    if _depth >= _MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, _depth + 1) for v in value]
    return value


def _current_trace_ids() -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` of the active, valid OpenTelemetry span, else ``(None, None)``."""
    if "opentelemetry.trace" not in sys.modules:
        try:
            from opentelemetry import trace
        except ImportError:  # opentelemetry-api is optional here
            return None, None
    else:
        trace = sys.modules["opentelemetry.trace"]
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def prepare_record(record: logging.LogRecord) -> logging.LogRecord:
    """Fill a record's derived fields on the calling thread (idempotent).

    Sets ``trace_id``/``span_id`` from the active span, ``error_code``/``error_type`` from the
    exception (classified), renders the traceback to ``exc_text``, and replaces ``context`` with
    a redacted copy so later changes by the caller do not leak into the log line.
    """
    if getattr(record, "_pixel_prepared", False):
        return record
    if not hasattr(record, "trace_id"):
        record.trace_id, record.span_id = _current_trace_ids()
    exc = record.exc_info[1] if record.exc_info else None
    code = getattr(record, "error_code", None)
    if exc is not None:
        record.error_type = type(exc).__name__
        if code is None and isinstance(exc, PixelLMError):
            code = exc.code
        elif code is None:
            code = DEFAULT_CLASSIFIER.classify(exc).code
    record.error_code = None if code is None else str(code)
    context: dict[str, Any] = {}
    raw = getattr(record, "context", None)
    if isinstance(raw, Mapping):
        context.update(raw)
    elif raw is not None:
        context["context"] = raw
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            context.setdefault(key, value)
    record.context = redact(context)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record._pixel_prepared = True
    return record


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``/``span_id`` of the active span to records; put it on a handler that hands
    records to another thread (a QueueHandler) so the ids are read on the logging thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = _current_trace_ids()
        return True


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line; usable on any stdlib handler.

    ``extra={"error_code": ..., "context": {...}}`` fill the matching keys; other ``extra``
    attributes are added to ``context``. Secrets are redacted.
    """

    def __init__(self, *, ensure_ascii: bool = False) -> None:
        super().__init__()
        self._ensure_ascii = ensure_ascii

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The JSON-ready dict of ``record``."""
        prepare_record(record)
        created = datetime.fromtimestamp(record.created, tz=timezone.utc)
        data: dict[str, Any] = {
            "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "error_code": getattr(record, "error_code", None),
            "context": getattr(record, "context", {}),
        }
        if record.exc_text:
            data["error_type"] = getattr(record, "error_type", None)
            data["stack_trace"] = redact(record.exc_text)
        if record.stack_info:
            data["stack_info"] = record.stack_info
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            data["trace_id"] = trace_id
            data["span_id"] = getattr(record, "span_id", None)
        return data

    def format(self, record: logging.LogRecord) -> str:
        data = self.to_dict(record)
        return json.dumps(data, default=_json_default, ensure_ascii=self._ensure_ascii)


def _json_default(value: Any) -> Any:
    """JSON fallback: tensors and other objects as short descriptions, never printed whole."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _short_repr(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return _short_repr(value, limit=200) if not isinstance(value, str) else value
