"""Fixtures for the resilience tests: a fake clock and an event recorder on GLOBAL_BUS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from resilience_support import Recorder

from pixel_llm_otel.resilience import GLOBAL_BUS, FakeClock, set_testing


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def recorder() -> Recorder:
    rec = Recorder()
    GLOBAL_BUS.subscribe(rec)  # the root conftest restores GLOBAL_BUS after each test
    return rec


@pytest.fixture(autouse=True)
def _no_testing_mode() -> Iterator[None]:
    set_testing(False)
    yield
    set_testing(False)
