"""Monitoring without OpenTelemetry's SDK: JSON structured logging and in-process error metrics.

``StructuredLogger`` writes JSON lines through a logging queue (the caller never waits on I/O);
``JsonFormatter`` gives the same lines on any stdlib handler; ``ErrorMetrics`` counts errors and
resilience events. Test helpers live in :mod:`pixel_llm_otel.monitoring.testing`.
"""

from __future__ import annotations

from ._forward import add_log_forwarder, remove_log_forwarder
from ._json import REDACTED, JsonFormatter, TraceContextFilter, redact
from .metrics import ErrorMetrics
from .structured_logger import StructuredLogger

__all__ = [
    "REDACTED",
    "ErrorMetrics",
    "JsonFormatter",
    "StructuredLogger",
    "TraceContextFilter",
    "add_log_forwarder",
    "redact",
    "remove_log_forwarder",
]
