"""Fixtures for the pipeline tests: the simulator on loopback, fast resilience settings, images."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import torch
from _support.pipelines import closing_pipelines
from pipeline_support import MODEL, FakeEncoder, RecordingObserver, fast_errors

from pixel_llm_otel.hooks import observing
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim import SimulatorServer
from pixel_llm_otel.sim.thread import SimulatorThread


@pytest.fixture
def image() -> torch.Tensor:
    """One small CHW image in 0..1 (seeded)."""
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))


@pytest.fixture
def images() -> torch.Tensor:
    """A BCHW batch of four small images (seeded)."""
    return torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(11))


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    """The fault simulator in the test's event loop (async tests)."""
    async with SimulatorServer(port=0, seed=1) as server:
        yield server


@pytest.fixture
def sim_thread() -> Iterator[SimulatorThread]:
    """The fault simulator on its own loop thread (sync tests)."""
    with SimulatorThread(port=0, seed=1) as server:
        yield server


@pytest.fixture
def log_stream() -> io.StringIO:
    """Where the pipelines' JSON log lines go."""
    return io.StringIO()


@pytest.fixture
async def make_llm(
    encoder: FakeEncoder, log_stream: io.StringIO
) -> AsyncIterator[Callable[..., HybridPixelLLM]]:
    """Build pipelines against a URL with fast settings; all closed at teardown."""
    logger = StructuredLogger("pixel_llm_otel.test", stream=log_stream)
    async with closing_pipelines(logger) as build:

        def make(url: str, **options: Any) -> HybridPixelLLM:
            options.setdefault("lm_studio_model", MODEL)
            options.setdefault("error_config", fast_errors())
            options.setdefault("encoder", encoder)
            options.setdefault("read_timeout", 2.0)
            options.setdefault("total_timeout", 5.0)
            options.setdefault("logger", logger)
            return build(url, **options)

        yield make


@pytest.fixture
def observer() -> Iterator[RecordingObserver]:
    """Install a recording observer for the test."""
    recorder = RecordingObserver()
    with observing(recorder):  # type: ignore[arg-type]
        yield recorder
