"""Shared fixtures. Area-specific fixtures live in tests/<area>/conftest.py or the test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixel_llm_otel import hooks
from pixel_llm_otel.resilience import GLOBAL_BUS


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    """Every test starts with no global listeners and the no-op pipeline observer."""
    listeners = GLOBAL_BUS.listeners
    observer = hooks.get_observer()
    yield
    GLOBAL_BUS.clear()
    for listener in listeners:
        GLOBAL_BUS.subscribe(listener)
    hooks.set_observer(observer)
