"""Telemetry fixtures: in-memory span exporter and metric reader, instrumentation reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_support import Captured, make_captured

from pixel_llm_otel.telemetry import PixelLLMInstrumentor
from pixel_llm_otel.telemetry._safety import reset_failures


@pytest.fixture(autouse=True)
def _uninstrument() -> Iterator[None]:
    """Every test ends uninstrumented, with the swallowed-failure log reset."""
    reset_failures()
    yield
    instrumentor = PixelLLMInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    reset_failures()


@pytest.fixture
def captured() -> Captured:
    """The package instrumented with in-memory exporters (no aiohttp instrumentation)."""
    return make_captured(instrument_http=False)
