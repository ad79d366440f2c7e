"""The registry behind :func:`pixel_llm_otel.monitoring.testing.capture_logs` (internal)."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_sinks: tuple[list[dict[str, Any]], ...] = ()


def active_sinks() -> tuple[list[dict[str, Any]], ...]:
    """The capture lists currently open (read without a lock: the tuple is replaced whole)."""
    return _sinks


def deliver(entry: dict[str, Any], sinks: tuple[list[dict[str, Any]], ...]) -> None:
    with _lock:
        for sink in sinks:
            sink.append(dict(entry))


def push(sink: list[dict[str, Any]]) -> None:
    global _sinks
    with _lock:
        _sinks = (*_sinks, sink)


def pop(sink: list[dict[str, Any]]) -> None:
    global _sinks
    with _lock:
        _sinks = tuple(s for s in _sinks if s is not sink)
