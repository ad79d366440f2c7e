"""Circuit breaker: configuration, transitions, probes, what counts as failure, the shells."""

from __future__ import annotations

import asyncio
import gc
import inspect
from datetime import timedelta
from typing import Any

import pytest
from resilience_support import Recorder

from pixel_llm_otel.errors import APIError, CircuitBreakerOpen, ErrorCode, ValidationError
from pixel_llm_otel.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    CircuitState,
    FakeClock,
    all_breakers,
)


def boom() -> None:
    raise APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)


def ok() -> str:
    return "ok"


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(APIError):
            breaker.call(boom)


def transitions(recorder: Recorder) -> list[tuple[str, str, str]]:
    return [(e.from_state, e.to_state, e.reason) for e in recorder.of(CircuitBreakerStateChange)]


def make(clock: FakeClock, **fields: Any) -> CircuitBreaker:
    config = CircuitBreakerConfig(**{"failure_rate_threshold": None, **fields})
    return CircuitBreaker("llm", config, clock=clock)


# --- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_rate_threshold", 0.0),
        ("failure_rate_threshold", 1.5),
        ("window_size", 0),
        ("minimum_calls", 21),  # > window_size
        ("cooldown", -1),
        ("half_open_max_calls", 0),
        ("success_threshold", True),
        ("is_failure", "yes"),
    ],
    ids=lambda v: repr(v),
)
def test_bad_config_field_raises_validation_error(field: str, value: object) -> None:
    """A bad field raises ValidationError (ERR_VALIDATION_CONFIG) naming the field."""
    with pytest.raises(ValidationError) as info:
        CircuitBreakerConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.code is ErrorCode.VALIDATION_CONFIG


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("",), {}), (("x", "config"), {}), (("x",), {"clock": 1}), (("x",), {"bus": 1})],
    ids=["name", "config", "clock", "bus"],
)
def test_bad_breaker_argument_raises(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """CircuitBreaker validates its arguments at construction."""
    with pytest.raises(ValidationError):
        CircuitBreaker(*args, **kwargs)


def test_timedelta_cooldown(clock: FakeClock) -> None:
    """A timedelta cooldown is honoured in seconds."""
    breaker = make(clock, failure_threshold=1, cooldown=timedelta(seconds=2))
    fail(breaker)
    clock.advance(1.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN


# --- CLOSED -> OPEN -----------------------------------------------------------------------
def test_opens_after_consecutive_failures(clock: FakeClock, recorder: Recorder) -> None:
    """failure_threshold consecutive failures open it, with one consecutive_failures event."""
    breaker = make(clock, failure_threshold=3)
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert transitions(recorder) == [("closed", "open", "consecutive_failures")]
    (event,) = recorder.of(CircuitBreakerStateChange)
    assert (event.name, event.at) == ("llm", 1000.0)


def test_a_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    """Failures separated by a success do not add up."""
    breaker = make(clock, failure_threshold=3)
    fail(breaker, 2)
    breaker.call(ok)
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().consecutive_failures == 2


def test_failure_rate_waits_for_minimum_calls(clock: FakeClock, recorder: Recorder) -> None:
    """The rate opens it only once the window holds minimum_calls calls (>= threshold)."""
    breaker = make(
        clock, failure_threshold=None, failure_rate_threshold=0.5, window_size=10, minimum_calls=10
    )
    for _ in range(4):
        fail(breaker)
        breaker.call(ok)
    fail(breaker)  # 5 failures in 9 calls: below minimum_calls
    assert breaker.state is CircuitState.CLOSED
    breaker.call(ok)  # 5 / 10 = 0.5 >= 0.5
    assert breaker.state is CircuitState.OPEN
    assert transitions(recorder) == [("closed", "open", "failure_rate")]


def test_failure_rate_window_slides(clock: FakeClock) -> None:
    """Old outcomes leave the window: early failures stop counting once pushed out."""
    breaker = make(
        clock, failure_threshold=None, failure_rate_threshold=0.5, window_size=4, minimum_calls=4
    )
    fail(breaker)
    for _ in range(5):
        breaker.call(ok)
    fail(breaker)
    snap = breaker.snapshot()
    assert (snap.window_calls, snap.window_failures, snap.failure_rate) == (4, 1, 0.25)
    fail(breaker)  # last four: ok ok F F = 0.5
    assert breaker.state is CircuitState.OPEN


# --- OPEN ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"], ids=["sync", "async"])
def test_open_rejects_fast_without_calling(mode: str, clock: FakeClock, recorder: Recorder) -> None:
    """While OPEN a call is refused with CircuitBreakerOpen (retry_after set) and an event."""
    breaker = make(clock, failure_threshold=1, cooldown=30.0)
    fail(breaker)
    clock.advance(10.0)
    called = []

    async def work() -> None:
        called.append(1)

    with pytest.raises(CircuitBreakerOpen) as info:
        if mode == "sync":
            breaker.call(called.append, 1)
        else:
            asyncio.run(breaker.call_async(work))
    assert called == []
    assert (info.value.breaker_name, info.value.state) == ("llm", "open")
    assert info.value.retry_after == pytest.approx(20.0)
    assert breaker.retry_after() == pytest.approx(20.0)
    assert recorder.of(CircuitBreakerRejected) == [CircuitBreakerRejected(name="llm", state="open")]
    assert breaker.snapshot().rejections == 1


def test_cooldown_moves_to_half_open_once(clock: FakeClock, recorder: Recorder) -> None:
    """After the cooldown the next look moves it to HALF_OPEN, with exactly one event."""
    breaker = make(clock, failure_threshold=1, cooldown=5.0)
    fail(breaker)
    clock.advance(5.0)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.retry_after() == 0.0
    assert transitions(recorder) == [
        ("closed", "open", "consecutive_failures"),
        ("open", "half_open", "cooldown_elapsed"),
    ]


# --- HALF_OPEN ----------------------------------------------------------------------------
def test_half_open_admits_at_most_max_probes(clock: FakeClock, recorder: Recorder) -> None:
    """With half_open_max_calls=2 two probes run at once; a third is refused as half_open."""
    breaker = make(
        clock, failure_threshold=1, cooldown=1.0, half_open_max_calls=2, success_threshold=2
    )
    fail(breaker)
    clock.advance(1.0)
    with breaker.guard(), breaker.guard():
        assert breaker.snapshot().half_open_in_flight == 2
        with pytest.raises(CircuitBreakerOpen) as info, breaker.guard():
            pass
        assert info.value.state == "half_open"
    assert breaker.state is CircuitState.CLOSED
    assert transitions(recorder)[-1] == ("half_open", "closed", "probe_succeeded")
    assert recorder.of(CircuitBreakerRejected) == [
        CircuitBreakerRejected(name="llm", state="half_open")
    ]


def test_success_threshold_probes_close_it(clock: FakeClock, recorder: Recorder) -> None:
    """success_threshold=3 needs three successful probes (one at a time) to close it."""
    breaker = make(clock, failure_threshold=1, cooldown=1.0, success_threshold=3)
    fail(breaker)
    clock.advance(1.0)
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.call(ok)
    assert breaker.state is CircuitState.CLOSED
    assert [t[2] for t in transitions(recorder)] == [
        "consecutive_failures",
        "cooldown_elapsed",
        "probe_succeeded",
    ]


def test_probe_failure_reopens_with_a_new_cooldown(clock: FakeClock, recorder: Recorder) -> None:
    """A failed probe re-opens it; the cooldown starts again from that moment."""
    breaker = make(clock, failure_threshold=1, cooldown=10.0)
    fail(breaker)
    clock.advance(10.0)
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot().opened_at == 1010.0
    clock.advance(9.0)
    assert breaker.state is CircuitState.OPEN
    clock.advance(1.0)
    assert breaker.state is CircuitState.HALF_OPEN
    assert [t[2] for t in transitions(recorder)] == [
        "consecutive_failures",
        "cooldown_elapsed",
        "probe_failed",
        "cooldown_elapsed",
    ]


@pytest.mark.parametrize(
    "error",
    [ValidationError("bad input"), KeyboardInterrupt(), asyncio.CancelledError()],
    ids=["not-a-failure", "keyboard-interrupt", "cancelled"],
)
def test_uncounted_endings_free_the_probe_slot(clock: FakeClock, error: BaseException) -> None:
    """A probe ending in a non-failure or an interruption gives its slot back, counting nothing."""
    breaker = make(clock, failure_threshold=1, cooldown=1.0)
    fail(breaker)
    clock.advance(1.0)

    def probe() -> None:
        raise error

    with pytest.raises(type(error)):
        breaker.call(probe)
    snap = breaker.snapshot()
    assert (snap.state, snap.half_open_in_flight, snap.failures) == (CircuitState.HALF_OPEN, 0, 1)
    breaker.call(ok)
    assert breaker.state is CircuitState.CLOSED


# --- what counts as a failure --------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        ValidationError(field="image", value=None, expected="a tensor"),
        APIError(status=400, code=ErrorCode.HTTP_BAD_REQUEST),
        APIError(status=401, code=ErrorCode.API_KEY_INVALID),
    ],
    ids=["validation", "http-400", "http-401"],
)
def test_caller_errors_do_not_trip_it(
    clock: FakeClock, recorder: Recorder, error: Exception
) -> None:
    """Errors the classifier says do not trip the breaker leave it closed, whatever their number."""
    breaker = make(clock, failure_threshold=1)

    def bad() -> None:
        raise error

    for _ in range(5):
        with pytest.raises(type(error)):
            breaker.call(bad)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().failures == 0
    assert recorder.events == []


def test_is_failure_overrides_the_classifier(clock: FakeClock) -> None:
    """config.is_failure decides instead of trips_breaker."""
    breaker = make(clock, failure_threshold=1, is_failure=lambda e: isinstance(e, KeyError))
    fail(breaker)  # a 503, but the predicate says no
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(KeyError):
        breaker.call({}.__getitem__, "k")
    assert breaker.state is CircuitState.OPEN


# --- stale results, force_open, reset -----------------------------------------------------
def test_a_call_from_an_older_state_cannot_move_the_new_one(
    clock: FakeClock, recorder: Recorder
) -> None:
    """A call admitted while CLOSED that ends after the breaker opened changes nothing."""
    breaker = make(clock, failure_threshold=1, cooldown=1.0)
    with breaker.guard():
        breaker.force_open()
        clock.advance(1.0)
        assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.state is CircuitState.HALF_OPEN  # the old success did not close it
    with pytest.raises(APIError), breaker.guard():
        breaker.reset()
        boom()
    assert breaker.state is CircuitState.CLOSED  # nor did the old failure re-open it
    assert [t[2] for t in transitions(recorder)] == ["forced_open", "cooldown_elapsed", "reset"]


def test_force_open_and_reset(clock: FakeClock, recorder: Recorder) -> None:
    """force_open() opens (again: restarts the cooldown, no event); reset() closes and forgets."""
    breaker = make(clock, failure_threshold=3, cooldown=10.0)
    fail(breaker, 2)
    breaker.force_open()
    clock.advance(5.0)
    breaker.force_open()
    assert breaker.retry_after() == pytest.approx(10.0)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0
    breaker.reset()
    assert transitions(recorder) == [("closed", "open", "forced_open"), ("open", "closed", "reset")]


# --- shells -------------------------------------------------------------------------------
def add(a: int, b: int = 2, *, c: int = 0) -> int:
    """Add."""
    return a + b + c


async def add_async(a: int, b: int = 2, *, c: int = 0) -> int:
    """Add."""
    return a + b + c


@pytest.mark.parametrize("fn", [add, add_async], ids=["sync", "async"])
def test_decorator_keeps_the_signature(fn: Any) -> None:
    """The decorator keeps name, docstring, signature and sync/async nature."""
    wrapped = CircuitBreaker("deco")(fn)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert wrapped.__doc__ == "Add."
    assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)
    result = wrapped(1, c=3)
    assert (asyncio.run(result) if inspect.iscoroutine(result) else result) == 6


def test_with_breaker_counts_the_block(clock: FakeClock) -> None:
    """`with breaker:` counts a failing block as a failure, nested uses included."""
    breaker = make(clock, failure_threshold=2)
    with breaker, breaker:
        pass
    for _ in range(2):
        with pytest.raises(APIError), breaker:
            boom()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerOpen), breaker:
        pass


async def test_async_with_breaker_and_guard(clock: FakeClock) -> None:
    """`async with breaker:` and `async with breaker.guard():` record outcomes per task."""
    breaker = make(clock, failure_threshold=2)

    async def failing_block(use_guard: bool) -> None:
        cm = breaker.guard() if use_guard else breaker
        async with cm:
            await asyncio.sleep(0)
            boom()

    results = await asyncio.gather(
        failing_block(True), failing_block(False), return_exceptions=True
    )
    assert all(isinstance(r, APIError) for r in results)
    assert breaker.state is CircuitState.OPEN
    assert breaker.snapshot().failures == 2


def test_guard_is_single_use(clock: FakeClock) -> None:
    """Entering a used guard again is a programming error."""
    guard = make(clock).guard()
    with guard:
        pass
    with pytest.raises(RuntimeError, match="single use"), guard:
        pass


def test_snapshot_reports_the_counters(clock: FakeClock) -> None:
    """snapshot() gives state, counters, window figures, opened_at and retry_after."""
    breaker = CircuitBreaker(
        "snap",
        CircuitBreakerConfig(failure_threshold=2, window_size=4, minimum_calls=4, cooldown=3.0),
        clock=clock,
    )
    breaker.call(ok)
    fail(breaker, 2)
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(ok)
    snap = breaker.snapshot()
    assert snap.name == "snap"
    assert snap.state is CircuitState.OPEN
    assert (snap.calls, snap.successes, snap.failures, snap.rejections) == (3, 1, 2, 1)
    assert (snap.opened_at, snap.retry_after) == (1000.0, 3.0)


def test_all_breakers_is_a_weak_registry() -> None:
    """all_breakers() lists live breakers and forgets collected ones."""
    breaker = CircuitBreaker("registered-one")
    assert breaker in all_breakers()
    del breaker
    gc.collect()
    assert "registered-one" not in [b.name for b in all_breakers()]
