"""The deadline bounds a whole batch: items queued behind max_concurrency share it."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
import torch
from hostile import HostileServer
from support import DEADLINE, SLACK, make_llm

from pixel_llm_otel.errors import ErrorCode, PixelLMError, RetryExhausted, TimeoutError


def _typed_timeout(error: BaseException | None) -> bool:
    """A deadline ending: RetryExhausted(reason=deadline) over a timeout, or a slot timeout."""
    if isinstance(error, RetryExhausted):
        last = error.last_error
        return error.context["reason"] == "deadline" and isinstance(last, TimeoutError)
    return isinstance(error, PixelLMError) and error.code is ErrorCode.TIMEOUT_TOTAL


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("scenario", ["silence", "stall-after-headers"])
def test_a_batch_returns_within_one_deadline(
    hostile: HostileServer, log_stream: io.StringIO, scenario: str, flavour: str
) -> None:
    """Six images, two slots, a stalling server: the batch ends by deadline + slack, all typed."""
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    llm = make_llm(hostile.url(scenario), "no-raise", log_stream, max_concurrency=2)
    started = time.monotonic()
    if flavour == "sync":
        try:
            results = llm.generate_batch_results(images)
        finally:
            elapsed = time.monotonic() - started
            llm.close()
    else:

        async def run() -> list:  # type: ignore[type-arg]
            try:
                return await llm.generate_batch_results_async(images)
            finally:
                await llm.aclose()

        results = asyncio.run(run())
        elapsed = time.monotonic() - started
    assert elapsed <= DEADLINE + SLACK, f"{elapsed:.3f}s"
    assert len(results) == 6
    assert all(r.text is None and _typed_timeout(r.error) for r in results), [
        repr(r.error) for r in results
    ]
    # two ran into the deadline mid-request; the queued ones got no slot (or one with no time
    # left, at the very end)
    assert sum(r.attempts for r in results) >= 2
