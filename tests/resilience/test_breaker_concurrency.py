"""The breaker under 100 threads and 100 asyncio tasks at once: exact admissions and events."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from resilience_support import Recorder

from pixel_llm_otel.errors import APIError, CircuitBreakerOpen, ErrorCode
from pixel_llm_otel.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    CircuitState,
    FakeClock,
)

THREADS = 100
TASKS = 100
WAIT_S = 20.0  # a deadline for every wait: a broken breaker fails the test instead of hanging


def run_contenders(
    sync_call: Callable[[], None], async_call: Callable[[], Awaitable[None]]
) -> None:
    """Start THREADS threads and an event loop with TASKS tasks, released by one barrier."""
    barrier = threading.Barrier(THREADS + 1)
    failures: list[BaseException] = []

    def thread_main() -> None:
        try:
            barrier.wait(timeout=WAIT_S)
            sync_call()
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    async def tasks_main() -> None:
        await asyncio.gather(*(async_call() for _ in range(TASKS)))

    def loop_main() -> None:
        try:
            barrier.wait(timeout=WAIT_S)
            asyncio.run(tasks_main())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=thread_main) for _ in range(THREADS)]
    threads.append(threading.Thread(target=loop_main))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT_S)
    assert not any(t.is_alive() for t in threads), "contenders still running after the deadline"
    assert failures == []


class Tally:
    """Counts contenders that have tried; sets ``all_tried`` when every one of them has."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.all_tried = threading.Event()

    def mark(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if sum(self.outcomes.values()) == self.total:
                self.all_tried.set()


@pytest.mark.parametrize("k", [1, 3, 10], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("probe_outcome", ["succeed", "fail"])
def test_half_open_admits_exactly_k_probes_from_threads_and_tasks(
    clock: FakeClock, recorder: Recorder, k: int, probe_outcome: str
) -> None:
    """200 contenders in HALF_OPEN: exactly k probes run, 200 - k are refused, and the
    transitions (open -> half_open, then one close or one re-open) are emitted exactly once."""
    config = CircuitBreakerConfig(
        failure_threshold=1,
        failure_rate_threshold=None,
        cooldown=5.0,
        half_open_max_calls=k,
        success_threshold=k,
    )
    breaker = CircuitBreaker("contended", config, clock=clock)
    breaker.force_open()
    clock.advance(5.0)  # the cooldown has elapsed; the first contender moves it to HALF_OPEN
    recorder.clear()
    tally = Tally(THREADS + TASKS)
    rejected_states: Counter[str] = Counter()
    state_lock = threading.Lock()

    def finish_probe() -> None:
        if probe_outcome == "fail":
            raise APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)

    def probe_sync() -> None:
        tally.mark("admitted")
        assert tally.all_tried.wait(WAIT_S)
        finish_probe()

    async def probe_async() -> None:
        tally.mark("admitted")
        assert await asyncio.to_thread(tally.all_tried.wait, WAIT_S)
        finish_probe()

    def refused(exc: CircuitBreakerOpen) -> None:
        with state_lock:
            rejected_states[exc.state] += 1
        tally.mark("rejected")

    def sync_call() -> None:
        try:
            breaker.call(probe_sync)
        except CircuitBreakerOpen as exc:
            refused(exc)
        except APIError:
            pass

    async def async_call() -> None:
        try:
            await breaker.call_async(probe_async)
        except CircuitBreakerOpen as exc:
            refused(exc)
        except APIError:
            pass

    run_contenders(sync_call, async_call)

    assert tally.outcomes == {"admitted": k, "rejected": THREADS + TASKS - k}
    assert rejected_states == {"half_open": THREADS + TASKS - k}
    changes = [(e.from_state, e.to_state, e.reason) for e in recorder.of(CircuitBreakerStateChange)]
    last = (
        ("half_open", "closed", "probe_succeeded")
        if probe_outcome == "succeed"
        else ("half_open", "open", "probe_failed")
    )
    assert changes == [("open", "half_open", "cooldown_elapsed"), last]
    assert len(recorder.of(CircuitBreakerRejected)) == THREADS + TASKS - k
    snap = breaker.snapshot()
    assert snap.rejections == THREADS + TASKS - k
    assert snap.half_open_in_flight == 0
    assert snap.state is (CircuitState.CLOSED if probe_outcome == "succeed" else CircuitState.OPEN)


def test_closed_to_open_stress_emits_exactly_one_transition(
    clock: FakeClock, recorder: Recorder
) -> None:
    """200 contenders failing 5 times each: it opens once; every call is either run or refused,
    and every refusal has its event."""
    per_contender = 5
    config = CircuitBreakerConfig(
        failure_threshold=50,
        failure_rate_threshold=0.5,
        window_size=100,
        minimum_calls=100,
        cooldown=60.0,
    )
    breaker = CircuitBreaker("stressed", config, clock=clock)
    tally = Tally(-1)

    def failing() -> None:
        raise APIError(status=500, code=ErrorCode.HTTP_SERVER_ERROR)

    async def failing_async() -> None:
        await asyncio.sleep(0)
        failing()

    def sync_call() -> None:
        for _ in range(per_contender):
            try:
                breaker.call(failing)
            except CircuitBreakerOpen:
                tally.mark("rejected")
            except APIError:
                tally.mark("ran")

    async def async_call() -> None:
        for _ in range(per_contender):
            try:
                await breaker.call_async(failing_async)
            except CircuitBreakerOpen:
                tally.mark("rejected")
            except APIError:
                tally.mark("ran")

    run_contenders(sync_call, async_call)

    total = (THREADS + TASKS) * per_contender
    assert tally.outcomes["ran"] + tally.outcomes["rejected"] == total
    assert tally.outcomes["ran"] >= 50
    changes = recorder.of(CircuitBreakerStateChange)
    assert [(e.from_state, e.to_state) for e in changes] == [("closed", "open")]
    snap = breaker.snapshot()
    assert snap.state is CircuitState.OPEN
    assert (snap.failures, snap.rejections) == (tally.outcomes["ran"], tally.outcomes["rejected"])
    assert len(recorder.of(CircuitBreakerRejected)) == tally.outcomes["rejected"]
