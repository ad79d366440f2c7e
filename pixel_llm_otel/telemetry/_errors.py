"""Errors as telemetry sees them: ``error.type``, code and category, each error counted once.

``pixel_llm.errors`` counts every classified error, retried ones included: the failed attempts
(reported by ``RetryAttempt`` events) and the final error a scope reports. The same exception often
reaches telemetry twice (a chat failure is also the generate failure), so an exception is marked
when counted and never counted again. ``RetryExhausted`` is a summary, not a failure of its own:
the last attempt's error is counted in its place.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..errors import DEFAULT_CLASSIFIER, RetryExhausted
from . import _names as n

__all__ = ["ErrorInfo", "describe", "mark_counted"]

_MARK = "_pixel_llm_otel_counted"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The low-cardinality description of one error."""

    error_type: str
    code: str
    category: str

    def attributes(self) -> dict[str, str]:
        return {
            n.ERROR_TYPE: self.error_type,
            n.ERROR_CODE: self.code,
            n.ERROR_CATEGORY: self.category,
        }


def describe(error: BaseException) -> ErrorInfo:
    """Classify ``error`` with the package's classifier."""
    c = DEFAULT_CLASSIFIER.classify(error)
    return ErrorInfo(error_type=c.error_type, code=str(c.code), category=str(c.category))


def mark_counted(error: BaseException) -> BaseException | None:
    """The exception to count for ``error`` (``None`` when it was counted already); marks it."""
    target = error.last_error if isinstance(error, RetryExhausted) else error
    if getattr(target, _MARK, False):
        return None
    with contextlib.suppress(AttributeError, TypeError):  # __slots__ exceptions: count anyway
        setattr(target, _MARK, True)
    return target
