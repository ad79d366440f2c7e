"""Fixtures for the simulator tests: a started simulator, a client session, request helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from pixel_llm_otel.sim import ManualClock, RecordingSleep, SimulatorServer


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture
def fake_sleep() -> RecordingSleep:
    """An async sleep that records delays and returns at once."""
    return RecordingSleep()


@pytest.fixture
async def sim(clock: ManualClock, fake_sleep: RecordingSleep) -> AsyncIterator[SimulatorServer]:
    """A healthy simulator on a free loopback port with a manual clock and a recording sleep."""
    async with SimulatorServer(seed=1, clock=clock, sleep=fake_sleep) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with a bounded total timeout."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client
