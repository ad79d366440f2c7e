"""Every fault kind of the simulator, sync and async, ends in its documented outcome in time.

The documented outcomes (all simulator faults are retryable):

=================  =================================  ======================================
fault              once, then ok                      on every attempt
=================  =================================  ======================================
500/502/503/504    retried, then the LLM's caption    RetryExhausted -> cache fallback
429 + Retry-After  retried after >= Retry-After       RetryExhausted -> cache fallback
hang               read timeout, retried, caption     RetryExhausted(TimeoutError) -> cache
reset              ConnectionError, retried, caption  RetryExhausted(ConnectionError) -> cache
malformed_json     APIError MALFORMED, retried        RetryExhausted(APIError) -> cache
empty_choices      APIError INVALID, retried          RetryExhausted(APIError) -> cache
=================  =================================  ======================================
"""

from __future__ import annotations

import time

import pytest
from pipeline_support import fast_errors

from pixel_llm_otel.errors import (
    APIError,
    ConnectionError,
    ErrorCode,
    RetryExhausted,
    TimeoutError,
)
from pixel_llm_otel.resilience.retry import RetryConfig
from pixel_llm_otel.sim import FaultSpec, RecordingSleep, SimulatorServer

FAULTS = [
    ("500", APIError, ErrorCode.HTTP_SERVER_ERROR),
    ("502", APIError, ErrorCode.HTTP_UNAVAILABLE),
    ("503", APIError, ErrorCode.HTTP_UNAVAILABLE),
    ("504", APIError, ErrorCode.HTTP_UNAVAILABLE),
    ("429", APIError, ErrorCode.RATE_LIMITED),
    ("hang", TimeoutError, ErrorCode.TIMEOUT_READ),
    ("reset", ConnectionError, ErrorCode.CONNECTION_RESET),
    ("malformed_json", APIError, ErrorCode.RESPONSE_MALFORMED),
    ("empty_choices", APIError, ErrorCode.RESPONSE_INVALID),
]
IDS = [f[0] for f in FAULTS]
#: Every call below must finish well inside this (read timeout 0.3 s, three attempts).
DEADLINE_S = 5.0


@pytest.fixture
async def quick_sim():
    """A simulator whose hangs last 2 s and whose 429s ask for 0.01 s."""
    spec = FaultSpec(name="test", hang_seconds=2.0, retry_after=0.01)
    async with SimulatorServer(port=0, seed=1, scenario=spec) as server:
        yield server


def _pipeline(make_llm, url, **kw):
    return make_llm(url, read_timeout=0.3, total_timeout=1.0, **kw)


@pytest.mark.parametrize(("fault", "error_type", "code"), FAULTS, ids=IDS)
async def test_async_fault_once_is_retried_then_succeeds(
    quick_sim: SimulatorServer, make_llm, image, fault, error_type, code
):
    """One fault then ok: the caption comes from the LLM on the second attempt."""
    llm = _pipeline(make_llm, quick_sim.base_url)
    quick_sim.script([fault, "ok"])
    started = time.monotonic()
    result = await llm.generate_result_async(image)
    assert time.monotonic() - started < DEADLINE_S
    assert (result.source, result.attempts) == ("llm", 2)
    stats = quick_sim.stats()
    assert stats.count("/v1/chat/completions", fault) == 1
    assert stats.count("/v1/chat/completions", "ok") == 1
    retried = llm.get_error_metrics()["retries"]["retried_by_code"]
    assert retried == {str(code): 1}


@pytest.mark.parametrize(("fault", "error_type", "code"), FAULTS, ids=IDS)
async def test_async_fault_every_time_falls_back_to_the_cache(
    quick_sim: SimulatorServer, make_llm, image, fault, error_type, code
):
    """A fault on every attempt exhausts the retry; the cached caption is served instead."""
    llm = _pipeline(make_llm, quick_sim.base_url)
    first = await llm.generate_result_async(image)
    quick_sim.script([fault] * 3)
    started = time.monotonic()
    result = await llm.generate_result_async(image)
    assert time.monotonic() - started < DEADLINE_S
    assert (result.text, result.source, result.attempts) == (first.text, "cache", 3)
    assert isinstance(result.error, RetryExhausted)
    assert isinstance(result.error.last_error, error_type)
    assert result.error.last_error.code is code


@pytest.mark.parametrize(("fault", "error_type", "code"), FAULTS, ids=IDS)
def test_sync_fault_every_time_raises_the_typed_error(
    sim_thread, make_llm, image, fault, error_type, code
):
    """Sync, no cached answer, raise_on_failure: RetryExhausted chained to the typed error."""
    sim_thread.set_scenario(FaultSpec(name="test", hang_seconds=2.0, retry_after=0.01))
    llm = _pipeline(make_llm, sim_thread.base_url)
    sim_thread.script([fault] * 3)
    started = time.monotonic()
    with pytest.raises(RetryExhausted) as caught:
        llm.generate(image, raise_on_failure=True)
    assert time.monotonic() - started < DEADLINE_S
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, error_type)
    assert caught.value.__cause__.code is code


@pytest.mark.parametrize(("fault", "error_type", "code"), FAULTS, ids=IDS)
def test_sync_fault_once_is_retried_then_succeeds(
    sim_thread, make_llm, image, fault, error_type, code
):
    """Sync: one fault then ok returns the LLM's caption."""
    sim_thread.set_scenario(FaultSpec(name="test", hang_seconds=2.0, retry_after=0.01))
    llm = _pipeline(make_llm, sim_thread.base_url)
    sim_thread.script([fault, "ok"])
    result = llm.generate_result(image)
    assert (result.source, result.attempts) == ("llm", 2)


async def test_no_fallback_and_no_raise_returns_none(quick_sim, make_llm, image):
    """Without a cached answer or default, the caller gets None and the error in the result."""
    llm = _pipeline(make_llm, quick_sim.base_url)
    quick_sim.script(["503"] * 3)
    assert await llm.generate_async(image) is None
    quick_sim.script(["503"] * 3)
    result = await llm.generate_result_async(image)
    assert (result.text, result.source, result.outcome) == (None, None, "error")
    assert isinstance(result.error, RetryExhausted)


async def test_default_fallback_serves_when_cache_is_empty(quick_sim, make_llm, image):
    """A configured default value answers when the cache has nothing for this key."""
    llm = _pipeline(
        make_llm,
        quick_sim.base_url,
        error_config=fast_errors(default_value="(caption unavailable)"),
    )
    quick_sim.script(["503"] * 3)
    result = await llm.generate_result_async(image)
    assert (result.text, result.source) == ("(caption unavailable)", "default")


async def test_custom_fallback_gets_the_error(quick_sim, make_llm, image):
    """A custom fallback function is called with the error and its value is served."""
    seen = []

    def custom(ctx):
        seen.append(ctx.error)
        return "custom caption"

    llm = _pipeline(
        make_llm, quick_sim.base_url, error_config=fast_errors(order=("custom",), custom=custom)
    )
    quick_sim.script(["500"] * 3)
    result = await llm.generate_result_async(image)
    assert (result.text, result.source) == ("custom caption", "custom")
    assert isinstance(seen[0], RetryExhausted)


async def test_retry_after_is_honoured(make_llm, image):
    """A 429's Retry-After sets the wait before the next attempt (backoff is only 1 ms)."""
    spec = FaultSpec(name="test", retry_after=2.0)
    sleep = RecordingSleep()
    errors = fast_errors()
    errors["retry"] = RetryConfig(initial_delay=0.001, max_delay=5.0, jitter=False)
    async with SimulatorServer(port=0, seed=1, scenario=spec) as server:
        llm = make_llm(server.base_url, async_sleep=sleep, error_config=errors)
        server.script(["429", "ok"])
        result = await llm.generate_result_async(image)
    assert (result.source, result.attempts) == ("llm", 2)
    assert sleep.calls == [2.0]


async def test_non_retryable_error_is_not_retried(make_llm, image):
    """A 401 (bad API key) is raised unchanged after one attempt, no retry."""
    async with SimulatorServer(port=0, seed=1, api_key="right-key") as server:
        llm = make_llm(server.base_url, api_key="wrong-key")
        with pytest.raises(APIError) as caught:
            await llm.generate_async(image, raise_on_failure=True)
        assert server.stats().count("/v1/chat/completions") == 1
    assert caught.value.code is ErrorCode.API_KEY_INVALID
    assert caught.value.status == 401


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_nothing_listening_fails_fast_and_clearly(make_llm, image, unused_port, mode):
    """No server at all: connection refused on every attempt, an outcome within a second."""
    llm = make_llm(f"http://127.0.0.1:{unused_port}/v1")
    started = time.monotonic()
    if mode == "async":
        result = await llm.generate_result_async(image)
    else:
        import asyncio

        result = await asyncio.to_thread(llm.generate_result, image)
    assert time.monotonic() - started < 1.0
    assert (result.text, result.attempts) == (None, 3)
    assert isinstance(result.error, RetryExhausted)
    assert isinstance(result.error.last_error, ConnectionError)
    assert result.error.last_error.code is ErrorCode.CONNECTION_REFUSED
    assert "Start LM Studio" in result.error.last_error.suggestion
    assert await llm.check_lm_studio_available_async() is False


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
