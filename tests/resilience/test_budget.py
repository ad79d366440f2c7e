"""The call's time budget: what the retry tells the attempt in flight, nesting, scopes."""

from __future__ import annotations

import asyncio

import pytest

from pixel_llm_otel.errors import APIError, ErrorCode, RetryExhausted
from pixel_llm_otel.resilience import (
    FakeClock,
    RetryConfig,
    RetryPolicy,
    deadline_scope,
    remaining_budget,
)


def _unavailable() -> APIError:
    return APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)


def _policy(clock: FakeClock, **config: object) -> RetryPolicy:
    options: dict[str, object] = {"initial_delay": 1.0, "jitter": False, "deadline": 10.0}
    options.update(config)
    return RetryPolicy(
        RetryConfig(**options),  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        async_sleep=clock.async_sleep,
    )


def test_no_budget_outside_any_retry_or_scope() -> None:
    """remaining_budget() is None when nothing set a deadline."""
    assert remaining_budget() is None


def test_attempts_read_what_is_left_of_the_retry_deadline() -> None:
    """Each attempt sees deadline minus the time already spent (attempts and sleeps)."""
    clock = FakeClock()
    seen: list[float | None] = []

    def attempt() -> str:
        seen.append(remaining_budget())
        clock.advance(2.0)  # the attempt itself takes 2 s
        if len(seen) < 3:
            raise _unavailable()
        return "ok"

    assert _policy(clock, max_attempts=3).call(attempt) == "ok"
    assert seen == [pytest.approx(10.0), pytest.approx(7.0), pytest.approx(3.0)]  # 2+1, 2+2 spent
    assert remaining_budget() is None  # closed with the call


def test_no_deadline_means_no_budget() -> None:
    """A retry without a deadline opens no budget."""
    clock = FakeClock()
    seen: list[float | None] = []
    _policy(clock, deadline=None).call(lambda: seen.append(remaining_budget()))
    assert seen == [None]


def test_an_enclosing_scope_caps_the_retry_deadline() -> None:
    """Inside deadline_scope(3), a retry with deadline 10 sees at most 3 s."""
    clock = FakeClock()
    seen: list[float | None] = []
    with deadline_scope(3.0, clock=clock):
        _policy(clock).call(lambda: seen.append(remaining_budget()))
    assert seen == [pytest.approx(3.0)]


def test_the_retry_never_sleeps_past_an_enclosing_scope() -> None:
    """A backoff that would cross the enclosing scope's end gives up with reason=deadline."""
    clock = FakeClock()
    calls = []

    def failing() -> None:
        calls.append(clock.now())
        raise _unavailable()

    with deadline_scope(1.5, clock=clock), pytest.raises(RetryExhausted) as caught:
        _policy(clock, max_attempts=5).call(failing)
    assert caught.value.context["reason"] == "deadline"
    assert len(calls) == 2  # sleeps of 1 s fit once, the next (2 s) would cross 1.5 s
    assert clock.now() < 1.5


async def test_run_async_in_scope_is_bounded_by_the_enclosing_scope_only() -> None:
    """run_async_in_scope opens no budget of its own: an attempt sees the scope's one budget,
    and the backoff gives up (reason=deadline) where the scope ends, not the configured 10 s."""
    clock = FakeClock()
    seen: list[float | None] = []

    async def attempt() -> str:
        seen.append(remaining_budget())
        raise _unavailable()

    retry = _policy(clock, max_attempts=5)
    with deadline_scope(1.5, clock=clock), pytest.raises(RetryExhausted) as caught:
        await retry.run_async_in_scope(attempt)
    assert caught.value.context["reason"] == "deadline"
    assert seen == [pytest.approx(1.5), pytest.approx(0.5)]  # 1 s slept, the 2 s one would cross
    assert clock.now() < 1.5


async def test_run_async_in_scope_without_a_scope_has_no_deadline() -> None:
    """Outside any scope it is bounded by attempts alone: the configured deadline is the
    caller's to open (the pipeline opens it per caption), so it is not applied twice."""
    clock = FakeClock()
    seen: list[float | None] = []

    async def attempt() -> str:
        seen.append(remaining_budget())
        clock.advance(4.0)  # 3 attempts x 4 s + sleeps: well past the configured 10 s
        if len(seen) < 3:
            raise _unavailable()
        return "ok"

    assert await _policy(clock, max_attempts=3).run_async_in_scope(attempt) == "ok"
    assert seen == [None, None, None]


def test_deadline_scope_none_adds_no_bound() -> None:
    """deadline_scope(None) leaves the budget as it was."""
    with deadline_scope(None):
        assert remaining_budget() is None


async def test_the_budget_follows_the_call_into_tasks() -> None:
    """Tasks created inside an async retry attempt see the same budget (contextvars)."""
    clock = FakeClock()

    async def attempt() -> float | None:
        return await asyncio.create_task(_read())

    async def _read() -> float | None:
        return remaining_budget()

    assert await _policy(clock).call_async(attempt) == pytest.approx(10.0)


def test_the_budget_goes_negative_once_past() -> None:
    """Past the end, remaining_budget() is <= 0 (the client then starts no attempt)."""
    clock = FakeClock()
    with deadline_scope(1.0, clock=clock):
        clock.advance(1.5)
        left = remaining_budget()
    assert left is not None
    assert left == pytest.approx(-0.5)
