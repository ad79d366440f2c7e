"""GuardedExporter: a pass-through while exports succeed; after a failure, batches fail fast and
one probe at a time (after a cooldown) finds out when the collector is back."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace.export import SpanExportResult

from pixel_llm_otel.sim.testing import ManualClock
from pixel_llm_otel.telemetry._export_guard import MIN_COOLDOWN_S, GuardedExporter


class _Collector:
    """An exporter whose answer the test sets; it records the batches that reached it."""

    def __init__(self) -> None:
        self.up = True
        self.batches: list[list[int]] = []
        self.shutdown_args: list[float] = []

    def export(self, batch: Sequence[int]) -> SpanExportResult:
        self.batches.append(list(batch))
        return SpanExportResult.SUCCESS if self.up else SpanExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        self.shutdown_args.append(timeout_millis)


def _guarded(inner: object, clock: ManualClock, failed: list[int], fail_fast: bool = True):
    return GuardedExporter(
        inner,
        signal="traces",
        success=SpanExportResult.SUCCESS,
        failure=SpanExportResult.FAILURE,
        on_failed=failed.append,
        fail_fast=fail_fast,
        clock=clock,
    )


def test_success_passes_through_and_counts_nothing() -> None:
    """A healthy collector sees every batch; nothing is counted as failed."""
    collector, failed = _Collector(), []
    guard = _guarded(collector, ManualClock(), failed)
    assert guard.export([1, 2]) is SpanExportResult.SUCCESS
    assert guard.export([3]) is SpanExportResult.SUCCESS
    assert (collector.batches, failed) == ([[1, 2], [3]], [])


def test_after_a_failure_batches_are_dropped_without_reaching_the_exporter() -> None:
    """Once a delivery fails, the next batches are counted and dropped at once until cooldown."""
    collector, failed = _Collector(), []
    clock = ManualClock()
    guard = _guarded(collector, clock, failed)
    collector.up = False
    assert guard.export([1, 2, 3]) is SpanExportResult.FAILURE
    assert guard.failing
    for _ in range(5):
        assert guard.export([4, 5]) is SpanExportResult.FAILURE
    assert collector.batches == [[1, 2, 3]]  # only the first reached the (dead) exporter
    assert failed == [3, 2, 2, 2, 2, 2]


def test_a_probe_after_the_cooldown_restores_the_pass_through() -> None:
    """After the cooldown one batch is tried on a side thread; its success ends fail-fast."""
    collector, failed = _Collector(), []
    clock = ManualClock()
    guard = _guarded(collector, clock, failed)
    collector.up = False
    guard.export([1])
    clock.advance(MIN_COOLDOWN_S)
    collector.up = True
    assert guard.export([2, 3]) is SpanExportResult.FAILURE  # handed to the probe
    assert guard.force_flush(5_000)  # waits for the probe
    assert not guard.failing
    assert collector.batches == [[1], [2, 3]]
    assert failed == [1]
    assert guard.export([4]) is SpanExportResult.SUCCESS


def test_failed_probes_back_off_and_count_their_batch() -> None:
    """A failed probe counts its batch and doubles the cooldown before the next one."""
    collector, failed = _Collector(), []
    clock = ManualClock()
    guard = _guarded(collector, clock, failed)
    collector.up = False
    guard.export([1])
    clock.advance(MIN_COOLDOWN_S)
    guard.export([2])  # probe 1: fails
    guard.force_flush(5_000)
    clock.advance(MIN_COOLDOWN_S)  # not enough: the cooldown doubled
    guard.export([3])
    clock.advance(MIN_COOLDOWN_S)
    guard.export([4])  # probe 2
    guard.force_flush(5_000)
    assert collector.batches == [[1], [2], [4]]
    assert sorted(failed) == [1, 1, 1, 1]


def test_one_probe_at_a_time() -> None:
    """While a probe is in flight (a silent collector), other batches are dropped at once."""
    release = threading.Event()

    class _Silent(_Collector):
        def export(self, batch: Sequence[int]) -> SpanExportResult:
            if self.batches:  # the first call fails at once; probes hang until released
                release.wait(5)
            return super().export(batch)

    collector, failed = _Silent(), []
    clock = ManualClock()
    guard = _guarded(collector, clock, failed)
    collector.up = False
    guard.export([1])
    clock.advance(10 * MIN_COOLDOWN_S)
    guard.export([2])  # the probe, now hanging
    guard.export([3, 4])
    assert failed == [1, 2]
    release.set()
    guard.force_flush(5_000)
    assert failed == [1, 2, 1]


def test_raising_exporters_count_as_failures_and_shutdown_passes_the_timeout() -> None:
    """An exception from export is a failed delivery; shutdown hands its budget on."""

    class _Raising(_Collector):
        def export(self, batch: Sequence[int]) -> SpanExportResult:
            raise ConnectionError("boom")

    collector, failed = _Raising(), []
    guard = _guarded(collector, ManualClock(), failed)
    assert guard.export([1, 2]) is SpanExportResult.FAILURE
    assert failed == [2]
    guard.shutdown(timeout_millis=250)
    assert collector.shutdown_args == [250]
    assert guard.export([3]) is SpanExportResult.FAILURE
    assert failed == [2, 1]


def test_without_fail_fast_every_batch_is_tried_and_failures_counted() -> None:
    """In-process exporters the caller passed are never skipped, only counted."""
    collector, failed = _Collector(), []
    guard = _guarded(collector, ManualClock(), failed, fail_fast=False)
    collector.up = False
    guard.export([1])
    guard.export([2, 3])
    assert collector.batches == [[1], [2, 3]]
    assert failed == [1, 2]
