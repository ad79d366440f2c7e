"""Test helpers for code that logs through :class:`StructuredLogger` (structlog style)::

    from pixel_llm_otel.monitoring.testing import capture_logs

    def test_warns_on_retry():
        with capture_logs() as logs:
            do_something()
        assert logs[0]["error_code"] == "ERR_TIMEOUT_READ"

While the block runs, every enabled record of every :class:`StructuredLogger` is rendered on the
caller's thread into ``logs`` (the same dicts the JSON lines would hold) instead of being written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _capture

__all__ = ["capture_logs"]


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect structured log records as dicts; nothing is written while capturing."""
    sink: list[dict[str, Any]] = []
    _capture.push(sink)
    try:
        yield sink
    finally:
        _capture.pop(sink)
