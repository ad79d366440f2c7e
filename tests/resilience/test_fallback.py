"""Fallbacks: order, cache TTL and LRU bound, default, custom (sync, async, raising), events."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from resilience_support import Recorder

from pixel_llm_otel.errors import APIError, ErrorCode, ValidationError
from pixel_llm_otel.resilience import (
    MISSING,
    FakeClock,
    FallbackConfig,
    FallbackContext,
    FallbackInvoked,
    FallbackManager,
    FallbackResult,
)

ERROR = APIError(status=503, code=ErrorCode.HTTP_UNAVAILABLE)


def manager(clock: FakeClock, **fields: Any) -> FallbackManager[str]:
    return FallbackManager(FallbackConfig(**fields), clock=clock)


def invoked(recorder: Recorder) -> list[tuple[str, str]]:
    return [(e.strategy, e.result) for e in recorder.of(FallbackInvoked)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "yes"),
        ("order", ("cache", "nope")),
        ("order", ("cache", "cache")),
        ("order", "cache"),
        ("cache_ttl", 0),
        ("cache_max_entries", 0),
        ("custom", "not callable"),
    ],
    ids=lambda v: repr(v),
)
def test_bad_config_field_raises_validation_error(field: str, value: object) -> None:
    """A bad field raises ValidationError (ERR_VALIDATION_CONFIG) naming the field."""
    with pytest.raises(ValidationError) as info:
        FallbackConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.code is ErrorCode.VALIDATION_CONFIG


def test_cache_serves_the_last_good_result(clock: FakeClock, recorder: Recorder) -> None:
    """The cache strategy serves the last value remembered for the key and stops there."""
    fb = manager(clock, default_value="default")
    fb.remember("k", "old")
    fb.remember("k", "new")
    result = fb.resolve("k", ERROR)
    assert result == FallbackResult(value="new", strategy="cache", served=True, tried=("cache",))
    assert invoked(recorder) == [("cache", "served")]
    (event,) = recorder.of(FallbackInvoked)
    assert (event.error_type, event.error_code) == ("APIError", "ERR_HTTP_UNAVAILABLE")


def test_strategies_are_tried_in_order(clock: FakeClock, recorder: Recorder) -> None:
    """A cache miss falls through to the default; one event per strategy tried."""
    fb = manager(clock, default_value="default")
    result = fb.resolve("unknown", ERROR)
    assert result == FallbackResult(
        value="default", strategy="default", served=True, tried=("cache", "default")
    )
    assert invoked(recorder) == [("cache", "empty"), ("default", "served")]


def test_configured_order_is_respected(clock: FakeClock, recorder: Recorder) -> None:
    """order=("custom", "cache") asks the custom function first."""
    fb = manager(clock, order=("custom", "cache"), custom=lambda ctx: f"custom:{ctx.key}")
    fb.remember("k", "cached")
    assert fb.resolve("k", ERROR).value == "custom:k"
    assert invoked(recorder) == [("custom", "served")]


def test_nothing_served_reports_every_strategy_empty(clock: FakeClock, recorder: Recorder) -> None:
    """With nothing cached, no default and no custom function the result is unserved."""
    fb = manager(clock)
    assert fb.resolve(None, ERROR) == FallbackResult(
        value=None, strategy=None, served=False, tried=STRATEGIES
    )
    assert invoked(recorder) == [(s, "empty") for s in STRATEGIES]


STRATEGIES = ("cache", "default", "custom")


def test_none_is_a_valid_default(clock: FakeClock) -> None:
    """default_value=None serves None; only MISSING means "no default"."""
    assert manager(clock, default_value=None).resolve(None, ERROR).served is True
    assert manager(clock, default_value=MISSING).resolve(None, ERROR).served is False


def test_disabled_serves_nothing_and_emits_nothing(clock: FakeClock, recorder: Recorder) -> None:
    """enabled=False: an unserved result with no strategy tried."""
    fb = manager(clock, enabled=False, default_value="d")
    assert fb.resolve("k", ERROR) == FallbackResult(
        value=None, strategy=None, served=False, tried=()
    )
    assert recorder.events == []


# --- cache ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ttl", "age", "served"),
    [
        (10.0, 9.99, True),
        (10.0, 10.0, False),
        (timedelta(seconds=10), 11.0, False),
        (None, 1e9, True),
    ],
    ids=["fresh", "expired-at-ttl", "timedelta-expired", "no-ttl"],
)
def test_cache_ttl_under_a_fake_clock(
    clock: FakeClock, ttl: float | timedelta | None, age: float, served: bool
) -> None:
    """Entries older than cache_ttl are dropped and not served."""
    fb = manager(clock, cache_ttl=ttl)
    fb.remember("k", "v")
    clock.advance(age)
    assert fb.resolve("k", ERROR).served is served
    stats = fb.stats()
    assert (stats.cache_hits, stats.cache_expired) == ((1, 0) if served else (0, 1))
    assert stats.cache_entries == (1 if served else 0)


def test_cache_is_a_bounded_lru(clock: FakeClock) -> None:
    """Beyond cache_max_entries the least recently used key is evicted (a hit refreshes it)."""
    fb = manager(clock, cache_max_entries=2)
    fb.remember("a", "A")
    fb.remember("b", "B")
    assert fb.resolve("a", ERROR).value == "A"  # "a" is now the most recent
    fb.remember("c", "C")
    assert fb.resolve("b", ERROR).served is False
    assert [fb.resolve(k, ERROR).value for k in ("a", "c")] == ["A", "C"]
    assert (fb.stats().cache_evictions, fb.stats().cache_entries) == (1, 2)


def test_remember_rejects_unhashable_keys(clock: FakeClock) -> None:
    """An unhashable key is a ValidationError, not a TypeError from deep inside."""
    with pytest.raises(ValidationError, match="key"):
        manager(clock).remember(["list"], "v")


def test_remember_is_a_no_op_without_the_cache_strategy(clock: FakeClock) -> None:
    """Without "cache" in the order nothing is stored."""
    fb = manager(clock, order=("default",))
    fb.remember("k", "v")
    assert fb.stats().cache_entries == 0


def test_cache_is_thread_safe(clock: FakeClock) -> None:
    """Concurrent remember/resolve keep the LRU bound and lose no counts."""
    fb = manager(clock, cache_max_entries=50)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait(timeout=10)
        for i in range(200):
            fb.remember((n, i), i)
            fb.resolve((n, i), ERROR)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stats = fb.stats()
    assert stats.resolutions == 1600
    assert stats.cache_entries == 50
    assert stats.cache_hits + stats.cache_misses == 1600


# --- custom --------------------------------------------------------------------------------
def test_custom_sync_gets_the_context(clock: FakeClock) -> None:
    """A sync custom function receives key, error and the extra keywords."""
    seen: list[FallbackContext] = []

    def custom(ctx: FallbackContext) -> str:
        seen.append(ctx)
        return "from custom"

    fb = manager(clock, custom=custom)
    result = fb.resolve("k", ERROR, model="m")
    assert (result.value, result.strategy) == ("from custom", "custom")
    assert (seen[0].key, seen[0].error, dict(seen[0].extra)) == ("k", ERROR, {"model": "m"})


async def test_custom_async_is_awaited(clock: FakeClock, recorder: Recorder) -> None:
    """resolve_async awaits an async custom function (sync ones work there too)."""

    async def custom(ctx: FallbackContext) -> str:
        await asyncio.sleep(0)
        return "async custom"

    assert (await manager(clock, custom=custom).resolve_async("k", ERROR)).value == "async custom"
    sync_fb = manager(clock, custom=lambda ctx: "sync custom")
    assert (await sync_fb.resolve_async("k", ERROR)).value == "sync custom"
    assert invoked(recorder)[-1] == ("custom", "served")


@pytest.mark.parametrize("mode", ["sync", "async"], ids=["sync", "async"])
def test_custom_raising_counts_as_empty_and_is_logged(
    mode: str, clock: FakeClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A custom function that raises is empty, logged with its traceback, and counted."""

    def custom(ctx: FallbackContext) -> str:
        raise RuntimeError("custom broke")

    fb = manager(clock, custom=custom)
    with caplog.at_level(logging.WARNING, logger="pixel_llm_otel.resilience.fallback"):
        if mode == "sync":
            result = fb.resolve("k", ERROR)
        else:
            result = asyncio.run(fb.resolve_async("k", ERROR))
    assert result.served is False
    assert invoked(recorder)[-1] == ("custom", "empty")
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "custom broke" in str(record.exc_info[1])
    assert fb.stats().custom_errors == 1


@pytest.mark.parametrize("returned", [None, MISSING], ids=["none", "missing"])
def test_custom_returning_nothing_is_empty(clock: FakeClock, returned: object) -> None:
    """A custom function returning None or MISSING has nothing to offer."""
    assert manager(clock, custom=lambda ctx: returned).resolve("k", ERROR).served is False


def test_async_custom_in_sync_resolve_warns_at_the_caller(clock: FakeClock) -> None:
    """resolve() cannot await: an async custom is empty, with a RuntimeWarning at the caller."""

    async def custom(ctx: FallbackContext) -> str:
        return "never"

    fb = manager(clock, custom=custom)
    with pytest.warns(RuntimeWarning, match="resolve_async") as warned:
        result = fb.resolve("k", ERROR)
    assert result.served is False
    assert warned[0].filename == __file__


def test_stats_count_by_strategy(clock: FakeClock) -> None:
    """stats() counts resolutions, served, unserved and which strategy served."""
    fb = manager(clock, order=("cache", "default"), default_value="d")
    fb.remember("k", "v")
    fb.resolve("k", ERROR)
    fb.resolve("other", ERROR)
    fb_empty = manager(clock)
    fb_empty.resolve("x", ERROR)
    stats = fb.stats()
    assert (stats.resolutions, stats.served, stats.unserved) == (2, 2, 0)
    assert dict(stats.served_by) == {"cache": 1, "default": 1, "custom": 0}
    assert fb_empty.stats().unserved == 1
