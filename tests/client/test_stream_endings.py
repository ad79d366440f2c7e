"""stream_chat over real HTTP (the simulator): every ending typed, the connection released."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pixel_llm_otel.client import LMStudioClient, StreamChunk
from pixel_llm_otel.errors import (
    DEFAULT_CLASSIFIER,
    APIError,
    ConnectionError,
    ErrorCode,
    PixelLMError,
    StreamInterrupted,
    TimeoutError,
)
from pixel_llm_otel.sim import FaultSpec, SimulatorServer

MESSAGES = [{"role": "user", "content": "stream me"}]
LONG = 30.0  # a stall or delay this long waits for the test to release it


class ReleasableSleep:
    """The simulator's sleep: short delays are real, LONG ones wait until the test ends."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        if seconds >= LONG:
            await self.release.wait()
        else:
            await asyncio.sleep(seconds)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    """A simulator whose long stalls end when the test does."""
    sleep = ReleasableSleep()
    async with SimulatorServer(seed=1, sleep=sleep) as server:
        yield server
        sleep.release.set()


@pytest.fixture
async def client(sim: SimulatorServer) -> AsyncIterator[LMStudioClient]:
    """A client with a one-connection pool, so a leaked connection blocks the next call."""
    async with LMStudioClient(sim.base_url, pool_limit=1, pool_limit_per_host=1) as c:
        yield c


def in_use(client: LMStudioClient) -> int:
    """Connections of the client's pool currently handed out."""
    session = client._session
    assert session is not None
    return len(session.connector._acquired)  # type: ignore[union-attr]


async def drain(client: LMStudioClient, **options: Any) -> list[StreamChunk]:
    return [c async for c in client.stream_chat(MESSAGES, model="sim-model", **options)]


async def assert_released(client: LMStudioClient) -> None:
    """Nothing is held, and the one-connection pool serves a complete stream at once."""
    assert in_use(client) == 0
    chunks = await asyncio.wait_for(drain(client), 5)
    assert "".join(c.text for c in chunks)
    assert in_use(client) == 0


async def failure(client: LMStudioClient, **options: Any) -> tuple[PixelLMError, int]:
    """The error that ends a stream, and how many content chunks came before it."""
    seen = 0
    with pytest.raises(PixelLMError) as info:
        async for chunk in client.stream_chat(MESSAGES, model="sim-model", **options):
            seen += bool(chunk.text)
    return info.value, seen


async def test_complete_stream_reports_usage_from_the_final_chunk(
    sim: SimulatorServer, client: LMStudioClient
) -> None:
    """A healthy stream ends at [DONE]; usage comes from the final usage chunk."""
    chunks = await drain(client)
    assert chunks[-1].choices == ()
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len("".join(c.text for c in chunks).split())
    await assert_released(client)


async def test_usage_is_absent_when_the_server_ignores_include_usage(
    client: LMStudioClient, sim: SimulatorServer
) -> None:
    """With a llama.cpp-like server (no usage chunk) no chunk carries usage: none is invented."""
    await sim.set_scenario(FaultSpec(stream_usage=False))
    chunks = await drain(client)
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


ENDINGS = [
    # (script step, options, error class, code, interrupted?, cause code)
    ({"kind": "stream_reset", "after": 1}, {}, ConnectionError, "ERR_CONNECTION_RESET", False),
    ({"kind": "stream_reset", "after": 3}, {}, StreamInterrupted, "ERR_CONNECTION_RESET", True),
    ({"kind": "stream_truncated", "after": 1}, {}, ConnectionError, "ERR_CONNECTION_RESET", False),
    ({"kind": "stream_truncated", "after": 3}, {}, StreamInterrupted, "ERR_CONNECTION_RESET", True),
    ({"kind": "stream_malformed", "after": 0}, {}, APIError, "ERR_RESPONSE_MALFORMED", False),
    (
        {"kind": "stream_malformed", "after": 3},
        {},
        StreamInterrupted,
        "ERR_RESPONSE_MALFORMED",
        True,
    ),
    ({"kind": "stream_empty"}, {}, APIError, "ERR_RESPONSE_INVALID", False),
    (
        {"kind": "slow_first_chunk", "seconds": LONG},
        {"idle_timeout": 0.2},
        TimeoutError,
        "ERR_TIMEOUT_READ",
        False,
    ),
    (
        {"kind": "stream_stall", "after": 3, "seconds": LONG},
        {"idle_timeout": 0.2},
        StreamInterrupted,
        "ERR_TIMEOUT_READ",
        True,
    ),
    (
        {"kind": "stream_stall", "after": 3, "seconds": LONG},
        {"idle_timeout": 10.0, "timeout": 0.3},
        StreamInterrupted,
        "ERR_TIMEOUT_TOTAL",
        True,
    ),
]


@pytest.mark.parametrize(
    ("step", "options", "error_class", "code", "interrupted"),
    ENDINGS,
    ids=[
        "reset-before-content",
        "reset-after-content",
        "no-done-before-content",
        "no-done-after-content",
        "malformed-first-event",
        "malformed-after-content",
        "empty-stream",
        "slow-first-chunk-idle",
        "stall-after-content-idle",
        "stall-after-content-deadline",
    ],
)
async def test_each_ending_is_typed_and_releases_the_connection(
    sim: SimulatorServer,
    client: LMStudioClient,
    step: dict[str, Any],
    options: dict[str, Any],
    error_class: type[PixelLMError],
    code: str,
    interrupted: bool,
) -> None:
    """Before content: the ordinary retryable error; after: StreamInterrupted with the cause."""
    if step["kind"] == "stream_reset":  # paced: a reset discards what the client has not read
        await sim.set_scenario(FaultSpec(stream_chunk_delay=0.02))
    sim.script([step])
    error, seen = await failure(client, **options)
    assert type(error) is error_class
    if interrupted:
        assert isinstance(error, StreamInterrupted)
        assert error.code is ErrorCode.STREAM_INTERRUPTED
        assert error.cause_code == code
        assert error.chunks == seen > 0
        assert not DEFAULT_CLASSIFIER.classify(error).retryable
        assert DEFAULT_CLASSIFIER.classify(error).trips_breaker
    else:
        assert str(error.code) == code
        assert seen == 0
        assert DEFAULT_CLASSIFIER.classify(error).retryable
    await assert_released(client)


@pytest.mark.parametrize("how", ["aclose", "dropped"], ids=["aclose", "dropped-and-collected"])
async def test_stopping_early_releases_the_connection(
    sim: SimulatorServer, client: LMStudioClient, how: str
) -> None:
    """A caller that stops mid-stream (aclose, or dropped to the GC) frees the connection."""
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    stream = client.stream_chat(MESSAGES, model="sim-model")
    async for chunk in stream:
        if chunk.text:
            break
    assert in_use(client) == 1  # the stalled response still holds it
    if how == "aclose":
        await stream.aclose()
    else:
        del stream, chunk
        gc.collect()  # the loop's async-generator finalizer schedules aclose()
        await wait_until(lambda: in_use(client) == 0)
    await assert_released(client)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.001)


async def test_cancelled_consumer_releases_the_connection(
    sim: SimulatorServer, client: LMStudioClient
) -> None:
    """Cancelling the task reading a stalled stream releases its connection."""
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    started = asyncio.Event()

    async def consume() -> None:
        async for chunk in client.stream_chat(MESSAGES, model="sim-model"):
            if chunk.text:
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_released(client)
