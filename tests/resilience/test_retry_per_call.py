"""Retry: a per-call deadline (``run`` / ``run_async``), and stats that count attempts made only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from resilience_support import fake_timing

from pixel_llm_otel.errors import APIError, ErrorCode, RetryExhausted, ValidationError
from pixel_llm_otel.resilience import FakeClock, RetryConfig, RetryPolicy


def unavailable() -> APIError:
    return APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)


def always_failing(clock: FakeClock, cost: float) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        clock.advance(cost)
        raise unavailable()

    return calls, attempt


def policy(clock: FakeClock, deadline: float | None = 100.0) -> RetryPolicy:
    config = RetryConfig(max_attempts=50, initial_delay=1.0, jitter=False, deadline=deadline)
    return RetryPolicy(config, **fake_timing(clock))


@pytest.mark.parametrize(
    ("deadline", "attempts"),
    [(None, 50), (2.5, 3), (timedelta(seconds=4.5), 5)],
    ids=["configured", "seconds", "timedelta"],
)
def test_run_deadline_overrides_the_configured_one(
    clock: FakeClock, deadline: float | timedelta | None, attempts: int
) -> None:
    """run(fn, deadline=...) bounds this call by its own deadline; None keeps the configured."""
    config = RetryConfig(max_attempts=50, initial_delay=1.0, max_delay=1.0, jitter=False)
    retry = RetryPolicy(config, **fake_timing(clock))
    calls, attempt = always_failing(clock, cost=0.0)
    with pytest.raises(RetryExhausted) as caught:
        retry.run(attempt, deadline=deadline)  # type: ignore[arg-type]
    assert len(calls) == attempts
    assert caught.value.context["reason"] == ("max_attempts" if deadline is None else "deadline")


async def test_run_async_deadline_overrides_the_configured_one(clock: FakeClock) -> None:
    """The async shell honours the per-call deadline the same way."""
    retry = policy(clock, deadline=None)
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        raise unavailable()

    with pytest.raises(RetryExhausted) as caught:
        await retry.run_async(attempt, deadline=2.5)
    assert (len(calls), caught.value.context["reason"]) == (2, "deadline")


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "3"], ids=["zero", "neg", "nan", "str"])
def test_run_rejects_a_bad_deadline(clock: FakeClock, bad: object) -> None:
    """A per-call deadline that is not > 0 seconds raises ValidationError naming deadline."""
    with pytest.raises(ValidationError) as caught:
        policy(clock).run(lambda: "ok", deadline=bad)  # type: ignore[arg-type]
    assert caught.value.field == "deadline"


async def test_a_cancelled_retry_sleep_is_not_counted_as_an_attempt() -> None:
    """Cancelled while sleeping before attempt 2: stats show 1 attempt and 0 retries."""
    sleeping = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()  # until cancelled

    retry = RetryPolicy(RetryConfig(max_attempts=3, jitter=False), async_sleep=slow_sleep)

    async def attempt() -> str:
        raise unavailable()

    task = asyncio.ensure_future(retry.call_async(attempt))
    await asyncio.wait_for(sleeping.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = retry.stats()
    assert (stats.calls, stats.attempts, stats.retries) == (1, 1, 0)
