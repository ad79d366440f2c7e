"""The API shape: an async pipeline with the real methods, one sync facade mechanism over it."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect

import pytest
import torch
from pipeline_support import MODEL, FakeEncoder, fast_errors

from pixel_llm_otel._sync_facade import SyncFacade
from pixel_llm_otel.client import SyncLMStudioClient
from pixel_llm_otel.pipeline import (
    AsyncHybridPixelLLM,
    HybridConfig,
    HybridPixelLLM,
    PipelineHealth,
    PipelineMetrics,
)
from pixel_llm_otel.resilience import RetryStats
from pixel_llm_otel.sim import SimulatorServer
from pixel_llm_otel.sim.thread import SimulatorThread

#: AsyncHybridPixelLLM coroutine methods -> (blocking name on the facade or None, async name).
TWINS = {
    "generate": ("generate", "generate_async"),
    "generate_result": ("generate_result", "generate_result_async"),
    "generate_batch": ("generate_batch", "generate_batch_async"),
    "generate_batch_results": ("generate_batch_results", "generate_batch_results_async"),
    "generate_encoded": (None, "generate_encoded_async"),
    "encode": (None, "encode_async"),
    "health": ("health", "health_async"),
    "check_lm_studio_available": (
        "check_lm_studio_available",
        "check_lm_studio_available_async",
    ),
}


def _public_coroutines(cls: type) -> set[str]:
    return {
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member) and name != "aclose"
    }


def test_every_async_method_has_its_facade_twins() -> None:
    """Each coroutine of the async pipeline is reachable from the facade, sync and async."""
    assert _public_coroutines(AsyncHybridPixelLLM) == set(TWINS)
    for name, (sync_name, async_name) in TWINS.items():
        real = inspect.signature(getattr(AsyncHybridPixelLLM, name))
        if sync_name is not None:
            twin = getattr(HybridPixelLLM, sync_name)
            assert not inspect.iscoroutinefunction(twin)
            assert inspect.signature(twin).parameters.keys() == real.parameters.keys()
        forward = getattr(HybridPixelLLM, async_name)
        assert inspect.iscoroutinefunction(forward)
        assert inspect.signature(forward).parameters.keys() == real.parameters.keys()


def test_the_facades_share_one_mechanism() -> None:
    """The pipeline, the client and the simulator facades are all SyncFacade subclasses."""
    for facade in (HybridPixelLLM, SyncLMStudioClient, SimulatorThread):
        assert issubclass(facade, SyncFacade)


async def test_async_pipeline_captions_on_the_callers_loop(sim: SimulatorServer) -> None:
    """AsyncHybridPixelLLM works on its own: config keywords, async with, awaitable methods."""
    async with AsyncHybridPixelLLM(
        lm_studio_url=sim.base_url,
        lm_studio_model=MODEL,
        error_config=fast_errors(),
        encoder=FakeEncoder(),
    ) as llm:
        caption = await llm.generate(torch.rand(3, 8, 8), deadline=5)
        batch = await llm.generate_batch([torch.rand(3, 8, 8), torch.rand(3, 8, 8)])
        assert caption is not None
        assert all(text is not None for text in batch)
        assert await llm.check_lm_studio_available()
    assert llm.closed


async def test_async_pipeline_from_a_config(sim: SimulatorServer) -> None:
    """AsyncHybridPixelLLM.from_config keeps the config object; keywords override it."""
    config = HybridConfig(lm_studio_url=sim.base_url, lm_studio_model=MODEL)
    async with AsyncHybridPixelLLM.from_config(config, encoder=FakeEncoder()) as same:
        assert same.config is config
    async with AsyncHybridPixelLLM(config, max_tokens=9, encoder=FakeEncoder()) as tuned:
        assert (tuned.config.max_tokens, tuned.config.client) == (9, config.client)


def test_health_is_a_frozen_dataclass_read_like_the_old_dict(sim_thread: SimulatorThread) -> None:
    """health(): PipelineHealth, frozen; ["key"] and to_dict() give the original dict."""
    with HybridPixelLLM(sim_thread.base_url, lm_studio_model=MODEL, encoder=FakeEncoder()) as llm:
        health = llm.health()
    assert isinstance(health, PipelineHealth)
    assert health.server_reachable is True
    assert health["server_reachable"] is True
    assert MODEL in health.models
    assert health.to_dict()["models"] == list(health.models)
    assert set(health) == {f.name for f in dataclasses.fields(PipelineHealth)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        health.cache_size = 3  # type: ignore[misc]


def test_metrics_are_a_frozen_dataclass_read_like_the_old_dict(
    sim_thread: SimulatorThread,
) -> None:
    """get_error_metrics(): PipelineMetrics with typed stats; the old keys still read."""
    sim_thread.script(["503", "ok"])
    with HybridPixelLLM(
        sim_thread.base_url,
        lm_studio_model=MODEL,
        error_config=fast_errors(),
        encoder=FakeEncoder(),
    ) as llm:
        assert llm.generate(torch.rand(3, 8, 8)) is not None
        metrics = llm.get_error_metrics()
    assert isinstance(metrics, PipelineMetrics)
    assert isinstance(metrics.retry_stats, RetryStats)
    assert (metrics.retry_stats.attempts, metrics["retry_stats"]["attempts"]) == (2, 2)
    assert metrics["retries"]["retries"] == 1
    assert metrics["circuit_breaker"]["state"] == "closed"
    with pytest.raises(TypeError):
        metrics.retries["retries"] = 0  # type: ignore[index]


def test_sync_facade_works_inside_a_running_loop(sim_thread: SimulatorThread) -> None:
    """The blocking methods run on the private loop, so they work from inside another loop."""

    async def inside() -> str | None:
        with HybridPixelLLM(
            sim_thread.base_url, lm_studio_model=MODEL, encoder=FakeEncoder()
        ) as llm:
            return llm.generate(torch.rand(3, 8, 8))

    assert asyncio.run(inside()) is not None
