"""Pipelines a test fixture builds: every one closed at teardown, then the logger they share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from pixel_llm_otel import HybridPixelLLM
from pixel_llm_otel.monitoring import StructuredLogger


@contextlib.asynccontextmanager
async def closing_pipelines(
    logger: StructuredLogger,
) -> AsyncIterator[Callable[..., HybridPixelLLM]]:
    """Yield ``build(*args, **options)`` (``HybridPixelLLM(...)``, remembered); on exit close
    every pipeline built, then ``logger``."""
    built: list[HybridPixelLLM] = []

    def build(*args: Any, **options: Any) -> HybridPixelLLM:
        llm = HybridPixelLLM(*args, **options)
        built.append(llm)
        return llm

    try:
        yield build
    finally:
        for llm in built:
            await llm.aclose()
        logger.close()
