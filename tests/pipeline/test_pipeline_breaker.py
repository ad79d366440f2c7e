"""The circuit breaker in the pipeline: opens at the threshold, stops traffic, probes, closes.

Time is a manual clock shared by the pipeline's breaker, retry and cache; nothing waits for real.
"""

from __future__ import annotations

import pytest
from pipeline_support import fast_errors

from pixel_llm_otel.errors import CircuitBreakerOpen, RetryExhausted
from pixel_llm_otel.sim import ManualClock, RecordingSleep, SimulatorServer

CHAT = "/v1/chat/completions"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_breaker_opens_stops_requests_then_half_opens_and_closes(
    sim: SimulatorServer, make_llm, image, clock: ManualClock
):
    """Two failed generates open it; while open nothing reaches the server; a probe closes it."""
    llm = make_llm(
        sim.base_url,
        error_config=fast_errors(attempts=2, threshold=2, cooldown=10.0),
        clock=clock,
        async_sleep=RecordingSleep(clock),
    )
    cached = await llm.generate_result_async(image)  # primes the cache
    assert cached.source == "llm"

    sim.script(["503"] * 4)
    for _ in range(2):
        result = await llm.generate_result_async(image)
        assert isinstance(result.error, RetryExhausted)
        assert result.source == "cache"
    assert llm.circuit_breaker.state.value == "open"
    reached = sim.stats().count(CHAT)
    assert reached == 5

    for _ in range(3):
        result = await llm.generate_result_async(image)
        assert isinstance(result.error, CircuitBreakerOpen)
        assert (result.source, result.attempts, result.text) == ("cache", 0, cached.text)
    assert sim.stats().count(CHAT) == reached  # the open breaker stopped the traffic

    clock.advance(10.0)
    assert llm.circuit_breaker.state.value == "half_open"
    probe = await llm.generate_result_async(image)
    assert (probe.source, probe.attempts) == ("llm", 1)
    assert llm.circuit_breaker.state.value == "closed"
    assert sim.stats().count(CHAT) == reached + 1

    transitions = llm.get_error_metrics()["circuit_breakers"]["transitions"]["lm_studio"]
    assert transitions == {"closed->open": 1, "open->half_open": 1, "half_open->closed": 1}
    assert llm.get_error_metrics()["circuit_breakers"]["rejected"] == {"lm_studio": 3}


async def test_failed_probe_reopens_the_breaker(
    sim: SimulatorServer, make_llm, image, clock: ManualClock
):
    """A half-open probe that fails sends the breaker back to open."""
    llm = make_llm(
        sim.base_url,
        error_config=fast_errors(attempts=1, threshold=1, cooldown=5.0),
        clock=clock,
        async_sleep=RecordingSleep(clock),
    )
    sim.script(["500", "500"])
    await llm.generate_async(image)
    assert llm.circuit_breaker.state.value == "open"
    clock.advance(5.0)
    assert (await llm.generate_result_async(image)).attempts == 1
    assert llm.circuit_breaker.state.value == "open"


def test_open_breaker_raises_circuit_open_when_asked(sim_thread, make_llm, image):
    """raise_on_failure with an open breaker and no fallback raises CircuitBreakerOpen."""
    llm = make_llm(sim_thread.base_url, error_config=fast_errors(attempts=1, threshold=1))
    sim_thread.script(["503"])
    assert llm.generate(image) is None
    with pytest.raises(CircuitBreakerOpen) as caught:
        llm.generate(image, raise_on_failure=True)
    assert caught.value.breaker_name == "lm_studio"
    assert caught.value.retry_after > 0
    assert sim_thread.stats().count(CHAT) == 1


async def test_health_reports_server_breaker_and_cache(sim: SimulatorServer, make_llm, image):
    """health(): reachable, the model list, the breaker state and the cache size."""
    llm = make_llm(sim.base_url)
    await llm.generate_async(image)
    health = await llm.health_async()
    assert health["server_reachable"] is True
    assert "sim-model" in health["models"]
    assert (health["breaker_state"], health["cache_size"], health["error"]) == ("closed", 1, None)
    llm.circuit_breaker.force_open()
    assert (await llm.health_async())["breaker_state"] == "open"
    assert await llm.check_lm_studio_available_async() is True


async def test_metrics_count_and_reset(sim: SimulatorServer, make_llm, image):
    """get_error_metrics counts retries and fallbacks of this instance; reset_metrics zeroes."""
    llm = make_llm(sim.base_url)
    await llm.generate_async(image)
    sim.script(["503", "ok", "500", "500", "500"])
    await llm.generate_async(image)
    await llm.generate_async(image)
    metrics = llm.get_error_metrics()
    assert metrics["retries"]["retries"] == 3
    assert metrics["retries"]["exhausted"] == 1
    assert metrics["fallbacks"]["by_strategy"] == {"cache": {"served": 1}}
    assert metrics["circuit_breaker"]["state"] == "closed"
    llm.reset_metrics()
    after = llm.get_error_metrics()
    assert after["retries"]["retries"] == 0
    assert after["errors"]["total"] == 0


async def test_instances_keep_separate_metrics(sim: SimulatorServer, make_llm, image):
    """Each pipeline owns its ErrorMetrics: one instance's retries don't show in another's."""
    busy, idle = make_llm(sim.base_url), make_llm(sim.base_url, breaker_name="other")
    sim.script(["503", "ok"])
    await busy.generate_async(image)
    assert busy.get_error_metrics()["retries"]["retries"] == 1
    assert idle.get_error_metrics()["retries"]["retries"] == 0
