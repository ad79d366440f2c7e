"""A ``logging.Handler`` that sends the package's log records over the Logs API (OTLP).

Attached by :func:`configure` to the ``pixel_llm_otel`` logger only (never the root logger, so
the SDK's own log lines cannot loop back into it). Records carry the active span's context, so a
log line links to its trace. ``logging`` levels map onto OTel severity numbers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry._logs import LoggerProvider, SeverityNumber

from ._safety import guard

__all__ = ["OTelLogHandler"]

_LEVELS = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)
#: LogRecord attributes that are logging's own bookkeeping, not user ``extra`` fields.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _severity(levelno: int) -> SeverityNumber:
    for level, number in _LEVELS:
        if levelno >= level:
            return number
    return SeverityNumber.TRACE


class OTelLogHandler(logging.Handler):
    """Emit each record to an OTel logger (from ``provider``) with the current context."""

    def __init__(self, provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        with guard("logs.emit"):
            attributes: dict[str, Any] = {
                "code.function.name": record.funcName,
                "code.file.path": record.pathname,
                "code.line.number": record.lineno,
            }
            for key, value in vars(record).items():
                if key not in _RESERVED and isinstance(value, (str, bool, int, float)):
                    attributes[key] = value
            logger = self._provider.get_logger(record.name)
            logger.emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                severity_number=_severity(record.levelno),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=attributes,
                exception=record.exc_info[1] if record.exc_info else None,
            )
