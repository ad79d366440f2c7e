"""Helpers of the adversarial suite: pipeline settings, a fake encoder, timed calls."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from typing import Any

import torch

from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import GenerateResult, HybridPixelLLM
from pixel_llm_otel.resilience import CircuitBreakerConfig, FallbackConfig, RetryConfig

#: The retry deadline of every adversarial call (seconds). Socket timeouts keep their defaults
#: (60 s read, 120 s total): only the deadline may bound the call.
DEADLINE = 1.0
#: The deadline of the scenarios that end on their own within milliseconds (errors, refusals):
#: roomy, so a slow, loaded CI machine cannot turn their three quick attempts into a deadline.
ROOMY_DEADLINE = 3.0
#: What a call may take past its deadline in these tests (generous for a loaded CI machine; the
#: measured slack is a few milliseconds, see docs/error-handling-guide.md).
SLACK = 0.5
FALLBACK_TEXT = "fallback caption"
MODES = ("raise", "no-raise", "fallback")
FLAVOURS = ("sync", "async")


class FakeEncoder:
    """A stand-in for the ViT: per-channel means, no model to build."""

    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return [f"mean {row.mean().item():.2f}" for row in features]


def make_llm(url: str, mode: str, stream: io.StringIO, **options: Any) -> HybridPixelLLM:
    """A pipeline against ``url``: 3 attempts, 10 ms backoff capped at 5 s, DEADLINE, no breaker.

    ``mode`` ``fallback`` serves :data:`FALLBACK_TEXT` by default; the others have no fallback
    (``fallback=`` a :class:`FallbackConfig` replaces either).
    """
    fallback = options.pop("fallback", None) or (
        FallbackConfig(default_value=FALLBACK_TEXT)
        if mode == "fallback"
        else FallbackConfig(enabled=False)
    )
    error_config = {
        "retry": RetryConfig(
            max_attempts=3,
            initial_delay=0.01,
            max_delay=5.0,
            jitter=False,
            deadline=options.pop("deadline", DEADLINE),
        ),
        "circuit_breaker": CircuitBreakerConfig(
            failure_threshold=None, failure_rate_threshold=None
        ),
        "fallback": fallback,
    }
    options.setdefault("api_key", "k3y+/=secret")
    options.setdefault("encoder", FakeEncoder())
    return HybridPixelLLM(
        url,
        lm_studio_model="hostile-model",
        error_config=error_config,
        logger=StructuredLogger("pixel_llm_otel.adversarial", stream=stream),
        **options,
    )


@dataclass(frozen=True)
class Call:
    """What one generate call returned or raised, and how long it took."""

    result: GenerateResult | None
    raised: BaseException | None
    elapsed: float

    @property
    def error(self) -> BaseException | None:
        return self.raised if self.raised is not None else self.result and self.result.error


def call(llm: HybridPixelLLM, flavour: str, mode: str, images: torch.Tensor) -> Call:
    """One generate through the sync or async API (``raise`` mode: raise_on_failure=True);
    the pipeline is closed afterwards."""
    raise_on_failure = mode == "raise"
    if flavour == "sync":
        try:
            return _timed_sync(llm, images, raise_on_failure)
        finally:
            llm.close()

    async def run() -> Call:
        try:
            started = time.monotonic()
            try:
                result = await llm.generate_result_async(images, raise_on_failure=raise_on_failure)
            except Exception as exc:
                return Call(None, exc, time.monotonic() - started)
            return Call(result, None, time.monotonic() - started)
        finally:
            await llm.aclose()

    return asyncio.run(run())


def _timed_sync(llm: HybridPixelLLM, images: torch.Tensor, raise_on_failure: bool) -> Call:
    started = time.monotonic()
    try:
        result = llm.generate_result(images, raise_on_failure=raise_on_failure)
    except Exception as exc:
        return Call(None, exc, time.monotonic() - started)
    return Call(result, None, time.monotonic() - started)
