"""GenAI events: log records with an event name, correlated to the chat span.

``gen_ai.client.inference.operation.details`` carries the operation's attributes and, in the
``event_only`` / ``span_and_event`` capture modes, its content.
``gen_ai.client.operation.exception`` (the conventions' next release; emitted only with the coming
names opted in) records a failed operation. Both go through the logger provider ``configure()``
set up (or the global one), with the chat span's context, so a backend links them to the trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord, SeverityNumber, get_logger

from .._version import __version__
from . import _names as n

__all__ = ["GenAIEvents"]


class GenAIEvents:
    """Emits the package's GenAI events on one logger."""

    __slots__ = ("_logger",)

    def __init__(self, logger_provider: Any = None) -> None:
        self._logger: Logger = get_logger(
            n.SCOPE_NAME, __version__, logger_provider=logger_provider
        )

    def operation_details(self, span: trace.Span, attributes: Mapping[str, Any]) -> None:
        """The ``gen_ai.client.inference.operation.details`` event of ``span``'s operation."""
        self._logger.emit(
            LogRecord(
                event_name=n.EVENT_OPERATION_DETAILS,
                severity_number=SeverityNumber.INFO,
                attributes=dict(attributes),
                context=trace.set_span_in_context(span),
            )
        )

    def operation_exception(
        self, span: trace.Span, error: BaseException, attributes: Mapping[str, Any]
    ) -> None:
        """The ``gen_ai.client.operation.exception`` event: the error of a failed operation."""
        values = dict(attributes)
        values[n.EXCEPTION_TYPE] = type(error).__qualname__
        values[n.EXCEPTION_MESSAGE] = _message(error)
        self._logger.emit(
            LogRecord(
                event_name=n.EVENT_OPERATION_EXCEPTION,
                severity_number=SeverityNumber.WARN,
                attributes=values,
                context=trace.set_span_in_context(span),
            )
        )


def _message(error: BaseException) -> str:
    from ..monitoring import redact

    return str(redact(str(error)))[:1024]
