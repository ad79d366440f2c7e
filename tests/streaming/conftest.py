"""Fixtures of the streaming tests: an instrumented package, the simulator, pipelines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import torch
from _support.pipelines import closing_pipelines
from stream_support import MODEL, Captured, FakeEncoder, ReleasableSleep, errors, instrument

from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim import SimulatorServer


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The package instrumented with in-memory span and metric capture."""
    cap, undo = instrument()
    yield cap
    undo()


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    """The simulator on loopback; long stalls end with the test."""
    sleep = ReleasableSleep()
    async with SimulatorServer(seed=1, sleep=sleep) as server:
        yield server
        sleep.release.set()


@pytest.fixture
def image() -> torch.Tensor:
    """One small CHW image (seeded)."""
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))


@pytest.fixture
async def make_llm(sim: SimulatorServer) -> AsyncIterator[Callable[..., HybridPixelLLM]]:
    """Pipelines against the simulator with fast settings; closed at teardown."""
    logger = StructuredLogger("pixel_llm_otel.test.stream", stream=None, level="CRITICAL")
    async with closing_pipelines(logger) as build:

        def make(**options: Any) -> HybridPixelLLM:
            options.setdefault("lm_studio_model", MODEL)
            options.setdefault("error_config", errors())
            options.setdefault("encoder", FakeEncoder())
            options.setdefault("read_timeout", 2.0)
            options.setdefault("logger", logger)
            return build(sim.base_url, **options)

        yield make


@pytest.fixture
def make_sync_llm(sim_thread_url: str) -> Iterator[Callable[..., HybridPixelLLM]]:
    """Pipelines for blocking tests (the simulator on its own loop thread); closed after."""
    built: list[HybridPixelLLM] = []
    logger = StructuredLogger("pixel_llm_otel.test.stream.sync", stream=None, level="CRITICAL")

    def make(**options: Any) -> HybridPixelLLM:
        options.setdefault("lm_studio_model", MODEL)
        options.setdefault("error_config", errors())
        options.setdefault("encoder", FakeEncoder())
        options.setdefault("logger", logger)
        llm = HybridPixelLLM(sim_thread_url, **options)
        built.append(llm)
        return llm

    yield make
    for llm in built:
        llm.close()
    logger.close()


@pytest.fixture
def sim_thread_url() -> Iterator[str]:
    """A healthy simulator on its own loop thread (for blocking tests)."""
    from pixel_llm_otel.sim.thread import SimulatorThread

    with SimulatorThread(port=0, seed=1) as server:
        yield server.base_url
