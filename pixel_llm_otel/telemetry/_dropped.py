"""Dropped telemetry, counted and visible.

The SDK's batch processors drop a span or log record when their bounded queue is full (an
unreachable or slow collector) or after shutdown, and only say so in a log line; a batch the
exporter failed to deliver (collector down, refusing, timing out) is lost with one log line and
no count at all. We hook their drop accounting, and wrap their exporters
(:class:`~pixel_llm_otel.telemetry._export_guard.GuardedExporter`), so every lost item is counted in
:class:`DroppedTelemetry` (``handle.dropped()``) and exported as the ``pixel_llm.telemetry.dropped``
counter (``pixel_llm.telemetry.signal`` = ``spans`` | ``logs``, ``error.type`` = ``queue_full`` |
``already_shutdown`` | ``export_failed``): an operator sees that traces are missing without a
debugger. The queue hook relies on an SDK detail; where it is absent, counting is reported as
unavailable (``DroppedStats.tracked`` false) rather than as zero.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import _names as n
from ._safety import guard

__all__ = ["EXPORT_FAILED", "DroppedStats", "DroppedTelemetry"]

#: ``error.type`` of items in a batch the exporter failed to deliver.
EXPORT_FAILED = "export_failed"

_log = logging.getLogger("pixel_llm_otel.telemetry")


@dataclass(frozen=True, slots=True)
class DroppedStats:
    """How much telemetry was dropped since :func:`configure`.

    ``spans`` and ``logs`` count every reason; ``export_failed`` is the part of both that was
    handed to the exporter and not delivered (the collector down, refusing or silent), so
    ``export_failed == 0`` after a flush means everything exported got through. ``by_reason``
    splits all drops by ``error.type`` (``queue_full``, ``already_shutdown``, ``export_failed``).
    """

    spans: int
    logs: int
    tracked: bool  # False when the SDK's processors could not be hooked
    export_failed: int = 0
    by_reason: Mapping[str, int] = field(default_factory=dict)


class _CountingMetrics:
    """Wraps a batch processor's internal metrics object, counting drops, then delegating."""

    def __init__(self, inner: Any, owner: DroppedTelemetry, signal: str) -> None:
        self._inner = inner
        self._owner = owner
        self._signal = signal

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        with guard("dropped.count"):
            self._owner.add(self._signal, error_type, count)
        self._inner.drop_items(count, error_type)

    def __getattr__(self, name: str) -> Any:  # register_queue_size, finish_items, ...
        return getattr(self._inner, name)


class DroppedTelemetry:
    """Thread-safe drop counters for the processors :func:`configure` created."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._tracked = True
        self._warned = False

    def attach(self, processor: Any, signal: str) -> None:
        """Count the drops of an SDK ``BatchSpanProcessor`` / ``BatchLogRecordProcessor``."""
        batch = getattr(processor, "_batch_processor", None)
        inner = getattr(batch, "_metrics", None)
        if batch is None or inner is None or not callable(getattr(inner, "drop_items", None)):
            self._tracked = False
            _log.info("cannot count dropped %s with this SDK version", signal)
            return
        batch._metrics = _CountingMetrics(inner, self, signal)

    def add(self, signal: str, reason: str, count: int) -> None:
        with self._lock:
            key = (signal, reason)
            self._counts[key] = self._counts.get(key, 0) + count
            first = not self._warned
            self._warned = True
        if first:
            _log.warning(
                "telemetry is being dropped (%s: %s); see the %s metric",
                signal, reason, n.METRIC_TELEMETRY_DROPPED,
            )  # fmt: skip

    def stats(self) -> DroppedStats:
        with self._lock:
            counts = dict(self._counts)
        by_reason: dict[str, int] = {}
        for (_, reason), value in counts.items():
            by_reason[reason] = by_reason.get(reason, 0) + value
        return DroppedStats(
            spans=sum(v for (s, _), v in counts.items() if s == "traces"),
            logs=sum(v for (s, _), v in counts.items() if s == "logs"),
            tracked=self._tracked,
            export_failed=by_reason.get(EXPORT_FAILED, 0),
            by_reason=by_reason,
        )

    def counter(self, signal: str, reason: str) -> Callable[[int], None]:
        """A callback adding to ``(signal, reason)``, for an exporter wrapper to call."""
        return lambda count: self.add(signal, reason, count)

    def register(self, meter: Meter) -> None:
        """Export the counts as the observable counter ``pixel_llm.telemetry.dropped``."""

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                items = list(self._counts.items())
            return [
                Observation(v, {n.TELEMETRY_SIGNAL: n.SIGNAL_ITEMS.get(s, s), n.ERROR_TYPE: r})
                for (s, r), v in items
            ]

        meter.create_observable_counter(
            n.METRIC_TELEMETRY_DROPPED,
            callbacks=[observe],
            unit="{item}",
            description=(
                "Spans and log records lost before reaching the collector "
                "(queue full, shut down, export failed)."
            ),
        )
