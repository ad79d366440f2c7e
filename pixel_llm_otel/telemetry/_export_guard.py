"""An exporter wrapper that makes a dead or silent collector cost the app nothing measurable.

The SDK's batch processors call ``exporter.export(batch)`` on their worker thread and wait for it.
With the collector down, the OTLP exporters retry with backoff until their timeout (seconds per
batch), so the span queue fills to its maximum and stays full: every span then lives until it is
pushed out of the queue, survives young-generation collections and makes each collection of the
older generations walk thousands of spans (tens of milliseconds, on the event loop's thread), and
the SDK logs a "Queue full" warning per span. That, not the network, was the p99 cost.

:class:`GuardedExporter` keeps the queue short instead. While exports succeed it is a
pass-through. After a failure it fails fast: batches are dropped at once, except one probe batch
at a time, which a side thread tries to deliver after a short cooldown (0.5 s, 1 s, then 2 s:
what is shed once the collector is back is lost, so recovery must be quick, and a probe costs one
connection attempt); the first probe that gets through restores the pass-through. The processors
below consult :meth:`~GuardedExporter.shedding` before queueing: while the exporter is failing, or
while one delivery has been stalled for more than :data:`STALL_S` (the first export to a
collector that just died), spans and log records are dropped at once instead of queued, except
the one batch a due probe needs. So the queue stays as short as with a healthy collector, items
die young, the worker thread never waits on a dead collector after its first try, and no "Queue
full" is logged. Every item not delivered is counted, through ``on_failed``, in
``pixel_llm.telemetry.dropped`` with ``error.type=export_failed`` (batches that failed, and items
shed while failing).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ._safety import guard

__all__ = ["GuardedExporter", "SheddingLogProcessor", "SheddingSpanProcessor"]

_log = logging.getLogger("pixel_llm_otel.telemetry")
MIN_COOLDOWN_S = 0.5
MAX_COOLDOWN_S = 2.0
#: A delivery running longer than this sheds new items (a healthy collector answers in ms).
STALL_S = 0.5


class GuardedExporter:
    """Wraps a span or log record exporter: counts failed items, fails fast while failing.

    ``success`` / ``failure`` are the wrapped exporter's result values (``SpanExportResult`` or
    ``LogRecordExportResult``); ``on_failed(n)`` is told about every ``n`` items not delivered.
    With ``fail_fast=False`` (in-process exporters the caller passed) failures are only counted.
    """

    def __init__(
        self,
        inner: Any,
        *,
        signal: str,
        success: Any,
        failure: Any,
        on_failed: Callable[[int], None],
        fail_fast: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fail_fast = fail_fast
        self._inner = inner
        self._signal = signal
        self._success = success
        self._failure = failure
        self._on_failed = on_failed
        self._clock = clock
        self._lock = threading.Lock()
        self._failing = False
        self._cooldown = MIN_COOLDOWN_S
        self._next_probe = 0.0
        self._probe: threading.Thread | None = None
        self._shutdown = False
        self._delivering_since: float | None = None
        self._batch_size = 1

    @property
    def inner(self) -> Any:
        """The wrapped exporter."""
        return self._inner

    @property
    def failing(self) -> bool:
        """Whether the last delivery failed (batches are dropped until a probe gets through)."""
        return self._failing

    def shedding(self, queued: int) -> bool:
        """Whether a new item should be dropped rather than queued (``queued`` are waiting).

        Called for every span and log record: reads a few attributes, takes no lock.
        """
        if not self._fail_fast:  # an in-process exporter the caller passed: never shed
            return False
        since = self._delivering_since
        if not self._failing:
            return since is not None and self._clock() - since > STALL_S
        if self._probe is not None or self._clock() < self._next_probe:
            return True
        return queued >= self._batch_size  # a probe is due: let one batch through for it

    def count_shed(self, count: int = 1) -> None:
        """Count items :meth:`shedding` turned away."""
        self._failed(count)

    def export(self, batch: Sequence[Any]) -> Any:
        with self._lock:
            if self._shutdown:
                failing, probe = True, False
            else:
                failing = self._failing
                probe = failing and self._probe is None and self._clock() >= self._next_probe
                if probe:
                    self._probe = threading.Thread(
                        target=self._run_probe,
                        args=(list(batch),),
                        name=f"pixel-llm-otel-{self._signal}-export-probe",
                        daemon=True,
                    )
                    self._probe.start()
        if not failing:
            return self._success if self._deliver(batch) else self._failure
        if not probe:
            self._failed(len(batch))
        return self._failure  # a probe's outcome is counted when it ends

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        probe = self._probe
        if probe is not None:
            probe.join(max(0.0, timeout_millis / 1000))
        flush = getattr(self._inner, "force_flush", None)
        return bool(flush(timeout_millis)) if callable(flush) else True

    def shutdown(self, timeout_millis: float = 30_000, **_kwargs: Any) -> None:
        """Shut the wrapped exporter down (an in-flight probe is abandoned: its thread is a
        daemon, and the exporter's shutdown interrupts its retries)."""
        with self._lock:
            self._shutdown = True
        shutdown = self._inner.shutdown
        if "timeout_millis" in inspect.signature(shutdown).parameters:
            shutdown(timeout_millis=timeout_millis)
        else:
            shutdown()

    # --- internals -------------------------------------------------------------------------------
    def _deliver(self, batch: Sequence[Any]) -> bool:
        self._batch_size = max(self._batch_size, len(batch))
        self._delivering_since = self._clock()
        try:
            ok = bool(self._inner.export(batch) == self._success)
        except Exception:  # an exporter that raises failed to deliver, like one that says so
            _log.debug("%s exporter raised", self._signal, exc_info=True)
            ok = False
        finally:
            self._delivering_since = None
        with self._lock:
            was_failing = self._failing
            if ok or not self._fail_fast:
                self._failing, self._cooldown = False, MIN_COOLDOWN_S
            else:
                self._failing = True
                self._next_probe = self._clock() + self._cooldown
                self._cooldown = min(self._cooldown * 2, MAX_COOLDOWN_S)
        if not ok:
            self._failed(len(batch))
            if not was_failing and self._fail_fast:
                _log.warning(
                    "exporting %s failed; dropping batches until the collector answers "
                    "(counted in pixel_llm.telemetry.dropped, error.type=export_failed)",
                    self._signal,
                )
        elif was_failing:
            _log.info("exporting %s works again", self._signal)
        return ok

    def _run_probe(self, batch: list[Any]) -> None:
        try:
            self._deliver(batch)
        finally:
            with self._lock:
                self._probe = None

    def _failed(self, count: int) -> None:
        with guard("export.failed"):
            self._on_failed(count)


class SheddingSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` that drops (and counts) spans while its exporter is shedding."""

    def __init__(self, exporter: GuardedExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)  # type: ignore[arg-type]  # a SpanExporter by duck type
        self._guard = exporter

    def on_end(self, span: Any) -> None:
        if self._guard.shedding(len(self._batch_processor._queue)):
            if span.context is not None and span.context.trace_flags.sampled:
                self._guard.count_shed()
            return
        super().on_end(span)


class SheddingLogProcessor(BatchLogRecordProcessor):
    """A ``BatchLogRecordProcessor`` that drops (and counts) records while its exporter sheds."""

    def __init__(self, exporter: GuardedExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)  # type: ignore[arg-type]  # duck-typed exporter
        self._guard = exporter

    def on_emit(self, log_record: Any) -> None:
        if self._guard.shedding(len(self._batch_processor._queue)):
            self._guard.count_shed()
            return
        super().on_emit(log_record)
