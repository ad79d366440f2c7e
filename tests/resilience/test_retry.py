"""Retry: configuration, backoff schedule, Retry-After, deadlines, retry_on, shells, stats."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from resilience_support import Recorder, fake_timing

from pixel_llm_otel.errors import APIError, ErrorCode, RetryExhausted, ValidationError
from pixel_llm_otel.resilience import (
    FakeClock,
    RetryAttempt,
    RetryConfig,
    RetryExhaustedEvent,
    RetryPolicy,
    RetryStats,
    RetrySucceeded,
    current_attempt,
    retry,
    set_testing,
)


def unavailable(retry_after: float | None = None) -> APIError:
    return APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE, retry_after=retry_after)


class Flaky:
    """Fails with the given errors in turn, then returns "ok"; advances the clock per attempt."""

    def __init__(
        self, errors: list[BaseException], clock: FakeClock | None = None, cost: float = 0.0
    ) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.attempts_seen: list[int] = []
        self.clock = clock
        self.cost = cost

    def __call__(self) -> str:
        self.calls += 1
        self.attempts_seen.append(current_attempt())
        if self.clock is not None:
            self.clock.advance(self.cost)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def run_async(self) -> str:
        await asyncio.sleep(0)
        return self()


def run(policy: RetryPolicy, flaky: Flaky, mode: str) -> str:
    if mode == "sync":
        return policy.call(flaky)
    return asyncio.run(policy.call_async(flaky.run_async))


MODES = pytest.mark.parametrize("mode", ["sync", "async"], ids=["sync", "async"])


# --- configuration ------------------------------------------------------------------------
def test_defaults_suit_an_llm_call() -> None:
    """The defaults: 3 attempts, 0.5 s initial, 10 s cap, x2, full jitter, 60 s deadline."""
    config = RetryConfig()
    assert (config.max_attempts, config.initial_delay, config.max_delay) == (3, 0.5, 10.0)
    assert (config.backoff_multiplier, config.jitter, config.deadline_seconds) == (2.0, True, 60.0)
    assert config.retry_on is None
    assert config.respect_retry_after is True


def test_timedelta_durations_are_accepted() -> None:
    """Durations may be timedeltas; the schedule uses them as seconds."""
    config = RetryConfig(
        initial_delay=timedelta(milliseconds=250),
        max_delay=timedelta(seconds=1),
        deadline=timedelta(minutes=1),
        jitter=False,
    )
    assert [config.cap(n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 1.0]
    assert config.deadline_seconds == 60.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", True),
        ("max_attempts", 2.5),
        ("initial_delay", -1),
        ("initial_delay", "1s"),
        ("max_delay", 0.1),  # below initial_delay
        ("backoff_multiplier", 0.5),
        ("backoff_multiplier", float("nan")),
        ("deadline", 0),
        ("deadline", float("inf")),
        ("jitter", "yes"),
        ("respect_retry_after", 1),
        ("retry_on", "ConnectionError"),
        ("retry_on", ()),
        ("retry_on", (ValueError, 3)),
    ],
    ids=lambda v: repr(v),
)
def test_bad_config_field_raises_validation_error(field: str, value: object) -> None:
    """A bad field raises ValidationError (ERR_VALIDATION_CONFIG) naming the field."""
    with pytest.raises(ValidationError) as info:
        RetryConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.code is ErrorCode.VALIDATION_CONFIG
    assert field in str(info.value)


def test_lone_exception_class_in_retry_on_becomes_a_tuple() -> None:
    """retry_on=KeyError means (KeyError,), not a predicate that is always truthy."""
    assert RetryConfig(retry_on=KeyError).retry_on == (KeyError,)


@pytest.mark.parametrize(
    "kwargs",
    [{"name": ""}, {"clock": 3}, {"rng": 7}, {"bus": object()}],
    ids=["name", "clock", "rng", "bus"],
)
def test_bad_policy_argument_raises(kwargs: dict[str, Any]) -> None:
    """RetryPolicy validates its keyword arguments at construction."""
    with pytest.raises(ValidationError):
        RetryPolicy(**kwargs)


# --- backoff ------------------------------------------------------------------------------
def test_backoff_schedule_without_jitter() -> None:
    """Without jitter the delay is min(max_delay, initial * multiplier ** (n - 1))."""
    config = RetryConfig(initial_delay=0.5, max_delay=3.0, backoff_multiplier=2.0, jitter=False)
    rng = random.Random(0)
    assert [config.backoff(n, rng) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_huge_attempt_is_capped_not_overflowing() -> None:
    """A huge attempt number gives max_delay instead of an OverflowError."""
    config = RetryConfig(max_delay=7.0, backoff_multiplier=10.0, jitter=False)
    assert config.backoff(10_000, random.Random(0)) == 7.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8], ids=lambda n: f"attempt{n}")
def test_full_jitter_stays_within_bounds_over_many_draws(attempt: int) -> None:
    """Full jitter draws uniformly in [0, cap(n)]: bounds hold and the draws fill the range."""
    config = RetryConfig(initial_delay=0.5, max_delay=10.0, backoff_multiplier=2.0)
    rng = random.Random(1234 + attempt)
    cap = config.cap(attempt)
    draws = [config.backoff(attempt, rng) for _ in range(4000)]
    assert all(0.0 <= d <= cap for d in draws)
    assert min(draws) < 0.05 * cap
    assert max(draws) > 0.95 * cap
    assert abs(sum(draws) / len(draws) - cap / 2) < 0.05 * cap


def test_backoff_rejects_attempt_zero() -> None:
    """backoff() counts attempts from 1."""
    with pytest.raises(ValidationError):
        RetryConfig().backoff(0, random.Random(0))


def test_seeded_rng_makes_the_sleeps_reproducible(clock: FakeClock) -> None:
    """Two policies with equally seeded rngs sleep exactly the same jittered delays."""
    sleeps = []
    for _ in range(2):
        fake = FakeClock()
        policy = RetryPolicy(
            RetryConfig(max_attempts=4), rng=random.Random(42), **fake_timing(fake)
        )
        policy.call(Flaky([unavailable()] * 3))
        sleeps.append(fake.sleeps)
    assert sleeps[0] == sleeps[1]
    assert len(sleeps[0]) == 3
    assert all(0 <= d <= RetryConfig().cap(i + 1) for i, d in enumerate(sleeps[0]))


@MODES
def test_sleeps_follow_the_schedule_under_a_fake_clock(mode: str, clock: FakeClock) -> None:
    """Three retryable failures sleep 0.5, 1, 2 s (no jitter) and the fourth attempt returns."""
    policy = RetryPolicy(RetryConfig(max_attempts=4, jitter=False), **fake_timing(clock))
    flaky = Flaky([unavailable()] * 3)
    assert run(policy, flaky, mode) == "ok"
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert clock() == pytest.approx(1003.5)
    assert flaky.attempts_seen == [1, 2, 3, 4]


# --- Retry-After ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("retry_after", "respect", "expected"),
    [(5.0, True, 5.0), (50.0, True, 10.0), (0.1, True, 0.5), (5.0, False, 0.5)],
    ids=["honoured", "capped-by-max-delay", "backoff-larger", "ignored-when-off"],
)
def test_retry_after_is_honoured_and_capped(
    clock: FakeClock, retry_after: float, respect: bool, expected: float
) -> None:
    """The delay is max(backoff, Retry-After), capped at max_delay (unless turned off)."""
    config = RetryConfig(jitter=False, respect_retry_after=respect, max_delay=10.0)
    policy = RetryPolicy(config, **fake_timing(clock))
    assert policy.call(Flaky([unavailable(retry_after=retry_after)])) == "ok"
    assert clock.sleeps == [expected]


# --- deadline -----------------------------------------------------------------------------
@MODES
def test_deadline_is_never_slept_past(mode: str, clock: FakeClock, recorder: Recorder) -> None:
    """With a 2 s deadline the policy sleeps 0.5 and 1 s, then gives up instead of sleeping 2 s."""
    config = RetryConfig(max_attempts=10, jitter=False, deadline=2.0)
    policy = RetryPolicy(config, **fake_timing(clock))
    last = unavailable()
    flaky = Flaky([unavailable(), unavailable(), last])
    with pytest.raises(RetryExhausted) as info:
        run(policy, flaky, mode)
    assert clock.sleeps == [0.5, 1.0]
    assert clock() - 1000.0 < 2.0
    assert info.value.attempts == 3
    assert info.value.__cause__ is last
    (event,) = recorder.of(RetryExhaustedEvent)
    assert event.reason == "deadline"
    assert event.attempts == 3


def test_deadline_counts_the_time_spent_in_attempts(clock: FakeClock) -> None:
    """Slow attempts use the budget too: 0.9 s attempts with a 2 s deadline allow one retry."""
    config = RetryConfig(max_attempts=10, jitter=False, initial_delay=0.1, deadline=2.0)
    policy = RetryPolicy(config, **fake_timing(clock))
    flaky = Flaky([unavailable()] * 5, clock=clock, cost=0.9)
    with pytest.raises(RetryExhausted):
        policy.call(flaky)
    assert flaky.calls == 2
    assert clock.sleeps == [0.1]


def test_retry_after_beyond_the_deadline_gives_up_at_once(clock: FakeClock) -> None:
    """A Retry-After that would end past the deadline makes the policy give up without sleeping."""
    config = RetryConfig(max_delay=60.0, deadline=10.0)
    policy = RetryPolicy(config, **fake_timing(clock))
    with pytest.raises(RetryExhausted) as info:
        policy.call(Flaky([unavailable(retry_after=30.0)]))
    assert clock.sleeps == []
    assert info.value.attempts == 1
    assert info.value.context["reason"] == "deadline"


def test_no_deadline_means_attempts_alone_limit(clock: FakeClock) -> None:
    """deadline=None: only max_attempts stops the retries."""
    config = RetryConfig(
        max_attempts=4, deadline=None, initial_delay=100, max_delay=100, jitter=False
    )
    policy = RetryPolicy(config, **fake_timing(clock))
    with pytest.raises(RetryExhausted):
        policy.call(Flaky([unavailable()] * 4))
    assert clock.sleeps == [100, 100, 100]


# --- what is retried ----------------------------------------------------------------------
@MODES
@pytest.mark.parametrize(
    "error",
    [
        ValidationError(field="prompt", value=1, expected="a str"),
        APIError(status=400, code=ErrorCode.HTTP_BAD_REQUEST),
        KeyError("unknown errors are not retried by default"),
    ],
    ids=["validation", "http-400", "unknown"],
)
def test_non_retryable_error_is_raised_unchanged(
    mode: str, error: Exception, clock: FakeClock, recorder: Recorder
) -> None:
    """A non-retryable error propagates as is, after one attempt, with no event and no sleep."""
    policy = RetryPolicy(**fake_timing(clock))
    with pytest.raises(type(error)) as info:
        run(policy, Flaky([error]), mode)
    assert info.value is error
    assert clock.sleeps == []
    assert recorder.events == []
    assert policy.stats() == RetryStats(
        calls=1,
        attempts=1,
        retries=0,
        successes=0,
        successes_after_retry=0,
        exhausted=0,
        not_retried=1,
    )


def test_non_retryable_after_retries_reports_not_retryable(
    clock: FakeClock, recorder: Recorder
) -> None:
    """A non-retryable error after a retry ends the call with a not_retryable exhausted event."""
    policy = RetryPolicy(**fake_timing(clock))
    bad = APIError(status=400, code=ErrorCode.HTTP_BAD_REQUEST)
    with pytest.raises(APIError) as info:
        policy.call(Flaky([unavailable(), bad]))
    assert info.value is bad
    (event,) = recorder.of(RetryExhaustedEvent)
    assert (event.reason, event.attempts, event.error_code) == (
        "not_retryable",
        2,
        "ERR_HTTP_BAD_REQUEST",
    )


@pytest.mark.parametrize(
    ("retry_on", "error", "retried"),
    [
        ((KeyError,), KeyError("k"), True),
        ((KeyError,), unavailable(), False),
        (lambda e: isinstance(e, KeyError), KeyError("k"), True),
        (lambda e: False, unavailable(), False),
        (KeyError, KeyError("k"), True),
    ],
    ids=["tuple-match", "tuple-overrides-classifier", "predicate-yes", "predicate-no", "class"],
)
def test_retry_on_overrides_the_classifier(
    clock: FakeClock, retry_on: Any, error: Exception, retried: bool
) -> None:
    """retry_on (exception classes or a predicate) decides instead of the classifier."""
    policy = RetryPolicy(RetryConfig(retry_on=retry_on), **fake_timing(clock))
    flaky = Flaky([error])
    if retried:
        assert policy.call(flaky) == "ok"
    else:
        with pytest.raises(type(error)):
            policy.call(flaky)
    assert flaky.calls == (2 if retried else 1)


@MODES
def test_exhausted_is_chained_to_the_last_error(
    mode: str, clock: FakeClock, recorder: Recorder
) -> None:
    """After max_attempts failures RetryExhausted is raised from the last error, with events."""
    errors = [unavailable(), unavailable(), unavailable()]
    policy = RetryPolicy(RetryConfig(max_attempts=3), name="llm", **fake_timing(clock))
    with pytest.raises(RetryExhausted) as info:
        run(policy, Flaky(list(errors)), mode)
    assert info.value.__cause__ is errors[-1]
    assert info.value.last_error is errors[-1]
    assert info.value.attempts == 3
    assert info.value.code is ErrorCode.RETRY_EXHAUSTED
    attempts = recorder.of(RetryAttempt)
    assert [(e.name, e.attempt, e.error_code) for e in attempts] == [
        ("llm", 1, "ERR_HTTP_UNAVAILABLE"),
        ("llm", 2, "ERR_HTTP_UNAVAILABLE"),
    ]
    assert [e.delay for e in attempts] == clock.sleeps
    (exhausted,) = recorder.of(RetryExhaustedEvent)
    assert (exhausted.reason, exhausted.attempts, exhausted.error) == (
        "max_attempts",
        3,
        errors[-1],
    )


@MODES
def test_success_after_retry_emits_retry_succeeded(
    mode: str, clock: FakeClock, recorder: Recorder
) -> None:
    """A success after retries emits one RetrySucceeded with the attempts used."""
    policy = RetryPolicy(RetryConfig(max_attempts=5), **fake_timing(clock))
    assert run(policy, Flaky([unavailable(), unavailable()]), mode) == "ok"
    assert recorder.of(RetrySucceeded) == [RetrySucceeded(name="retry", attempts=3)]


def test_happy_path_emits_nothing(clock: FakeClock, recorder: Recorder) -> None:
    """A first-try success emits no event and sleeps not at all."""
    policy = RetryPolicy(**fake_timing(clock))
    assert policy.call(Flaky([])) == "ok"
    assert recorder.events == []
    assert clock.sleeps == []


@MODES
def test_keyboard_interrupt_and_cancellation_are_not_retried(mode: str, clock: FakeClock) -> None:
    """BaseExceptions that are not Exceptions propagate at once and still count as calls."""
    error: BaseException = KeyboardInterrupt() if mode == "sync" else asyncio.CancelledError()
    policy = RetryPolicy(**fake_timing(clock))
    flaky = Flaky([error])
    with pytest.raises(type(error)):
        run(policy, flaky, mode)
    assert flaky.calls == 1
    assert policy.stats().calls == 1


# --- shells, decorator, signatures ---------------------------------------------------------
def test_sync_and_async_shells_agree(clock: FakeClock, recorder: Recorder) -> None:
    """The same failures give the same sleeps, events and statistics in both shells."""
    outcomes = []
    for mode in ("sync", "async"):
        fake = FakeClock()
        policy = RetryPolicy(RetryConfig(max_attempts=4), rng=random.Random(5), **fake_timing(fake))
        recorder.clear()
        run(policy, Flaky([unavailable(), unavailable(retry_after=3.0)]), mode)
        outcomes.append((fake.sleeps, [type(e) for e in recorder.events], policy.stats()))
    assert outcomes[0] == outcomes[1]


def annotated(a: int, b: str = "x", *args: float, c: bool = False, **kw: object) -> str:
    """Doc."""
    return f"{a}{b}{c}"


async def annotated_async(a: int, b: str = "x", *args: float, c: bool = False, **kw: object) -> str:
    """Doc."""
    return f"{a}{b}{c}"


@pytest.mark.parametrize("fn", [annotated, annotated_async], ids=["sync", "async"])
@pytest.mark.parametrize(
    "decorate",
    [retry, retry(), retry(max_attempts=5), retry(RetryConfig(max_attempts=2)), RetryPolicy()],
    ids=["bare", "empty-call", "options", "config", "policy"],
)
def test_decorator_keeps_the_signature(fn: Callable[..., Any], decorate: Any) -> None:
    """Every decorator form keeps name, docstring, signature and sync/async nature."""
    wrapped = decorate(fn)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert (wrapped.__name__, wrapped.__doc__) == (fn.__name__, fn.__doc__)
    assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)
    result = wrapped(1, c=True)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    assert result == "1xTrue"


def test_decorator_options_build_the_policy() -> None:
    """@retry(config, **options) merges fields into the config and names the policy."""

    @retry(RetryConfig(max_attempts=2), initial_delay=1.0, name="llm")
    def f() -> None: ...

    @retry
    def g() -> None: ...

    policy_f: RetryPolicy = f.retry_policy  # type: ignore[attr-defined]
    policy_g: RetryPolicy = g.retry_policy  # type: ignore[attr-defined]
    assert (policy_f.config.max_attempts, policy_f.config.initial_delay) == (2, 1.0)
    assert policy_f.name == "llm"
    assert policy_g.name.endswith("g")
    assert policy_g.config == RetryConfig()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {"max_atempts": 3}), (("3",), {}), ((RetryConfig(),), {"max_attempts": 0})],
    ids=["unknown-option", "not-a-config", "bad-override"],
)
def test_decorator_rejects_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """@retry with a misspelt option, a non-config or a bad value raises ValidationError."""
    with pytest.raises(ValidationError):
        retry(*args, **kwargs)


def test_generators_cannot_be_retried() -> None:
    """Decorating a generator function is refused (retrying it would retry nothing)."""

    def gen() -> Any:
        yield 1

    with pytest.raises(ValidationError, match="generators"):
        retry(gen)


# --- current_attempt ----------------------------------------------------------------------
def test_current_attempt_is_one_outside_and_restored_after(clock: FakeClock) -> None:
    """current_attempt() is 1 outside any retry and returns to 1 once the retry ends."""
    policy = RetryPolicy(**fake_timing(clock))
    assert current_attempt() == 1
    flaky = Flaky([unavailable(), unavailable()])
    policy.call(flaky)
    assert flaky.attempts_seen == [1, 2, 3]
    assert current_attempt() == 1


def test_nested_retry_sees_its_own_attempt_numbers(clock: FakeClock) -> None:
    """An inner retry counts from 1 even on the outer's 2nd attempt; the outer's is restored."""
    inner_policy = RetryPolicy(**fake_timing(clock))
    outer_policy = RetryPolicy(**fake_timing(clock))
    seen: list[tuple[str, int]] = []
    inner = Flaky([unavailable()])
    outer_errors = [unavailable()]

    def outer() -> str:
        seen.append(("outer", current_attempt()))
        if outer_errors:
            raise outer_errors.pop()
        inner_policy.call(inner)
        seen.append(("outer-after", current_attempt()))
        return "done"

    assert outer_policy.call(outer) == "done"
    assert seen == [("outer", 1), ("outer", 2), ("outer-after", 2)]
    assert inner.attempts_seen == [1, 2]


async def test_current_attempt_is_per_task(clock: FakeClock) -> None:
    """Concurrent async retries each see their own attempt number."""
    policy = RetryPolicy(**fake_timing(clock))
    flakies = [Flaky([unavailable()] * n) for n in (0, 1, 2)]
    await asyncio.gather(*(policy.call_async(f.run_async) for f in flakies))
    assert [f.attempts_seen for f in flakies] == [[1], [1, 2], [1, 2, 3]]


# --- testing mode -------------------------------------------------------------------------
def test_testing_mode_turns_sleeps_off_and_caps_attempts() -> None:
    """set_testing(True, attempts=2): no real sleep happens and only 2 attempts are made."""

    def forbidden_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}")

    policy = RetryPolicy(
        RetryConfig(max_attempts=5, initial_delay=30, max_delay=30), sleep=forbidden_sleep
    )
    set_testing(True, attempts=2)
    flaky = Flaky([unavailable()] * 3)
    with pytest.raises(RetryExhausted) as info:
        policy.call(flaky)
    assert info.value.attempts == 2
    assert flaky.calls == 2
    set_testing(True)
    assert policy.call(Flaky([unavailable()] * 4)) == "ok"  # the configured 5 attempts


@pytest.mark.parametrize(
    ("args", "kwargs"), [(("yes",), {}), ((True,), {"attempts": 0})], ids=["enabled", "attempts"]
)
def test_set_testing_validates(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """set_testing rejects a non-bool switch and attempts < 1."""
    with pytest.raises(ValidationError):
        set_testing(*args, **kwargs)


# --- statistics ---------------------------------------------------------------------------
def test_stats_are_exact(clock: FakeClock) -> None:
    """Counters add up: first-try successes, a success after retries, exhausted, not retried."""
    policy = RetryPolicy(RetryConfig(max_attempts=3), **fake_timing(clock))
    for _ in range(3):
        policy.call(Flaky([]))
    policy.call(Flaky([unavailable(), unavailable()]))
    with pytest.raises(RetryExhausted):
        policy.call(Flaky([unavailable()] * 3))
    with pytest.raises(ValidationError):
        policy.call(Flaky([ValidationError("bad")]))
    assert policy.stats() == RetryStats(
        calls=6,
        attempts=3 + 3 + 3 + 1,
        retries=4,
        successes=4,
        successes_after_retry=1,
        exhausted=1,
        not_retried=1,
    )
    policy.reset_stats()
    assert dataclasses.astuple(policy.stats()) == (0,) * 7


def test_stats_are_exact_under_threads(clock: FakeClock) -> None:
    """8 threads x 250 calls through one policy: no lost updates."""
    policy = RetryPolicy(**fake_timing(clock))
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait(timeout=10)
        for i in range(250):
            policy.call(Flaky([unavailable()] if i % 50 == 0 else []))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stats = policy.stats()
    assert (stats.calls, stats.successes, stats.retries, stats.attempts) == (2000, 2000, 40, 2040)
