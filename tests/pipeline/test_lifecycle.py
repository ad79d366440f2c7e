"""Lifecycle: nothing outlives its event loop, close() reclaims everything, closed means closed.

Open connections are counted from the kernel's view of this process (``/proc``): TCP sockets of
this process whose remote end is the simulator's port.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from pipeline_support import MODEL, FakeEncoder, fast_errors

from pixel_llm_otel._loop_thread import LoopThread
from pixel_llm_otel.errors import ClientClosedError, ErrorCode
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim.thread import SimulatorThread

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")


def open_connections(port: int) -> int:
    """TCP sockets of this process connected to ``port`` (client side), per the kernel."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                count += 1
    return count


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[SimulatorThread]:
    with SimulatorThread(port=0, seed=5) as sim:
        yield sim


@pytest.fixture
def llm(server: SimulatorThread) -> Iterator[HybridPixelLLM]:
    pipeline = HybridPixelLLM(
        server.base_url,
        lm_studio_model=MODEL,
        error_config=fast_errors(attempts=1),
        encoder=FakeEncoder(),
        read_timeout=30.0,
        total_timeout=60.0,
    )
    yield pipeline
    pipeline.close()


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))


def test_asyncio_run_per_call_leaves_nothing_open(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor
) -> None:
    """Ten asyncio.run() calls on one instance: after each, no connection, no client, no loop."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> str | None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await llm.generate_async(image)

    for i in range(10):
        assert asyncio.run(one()) is not None
        assert open_connections(server.port) == 0, f"after call {i + 1}"
        assert len(llm.async_pipeline._core.loops) == 0, f"after call {i + 1}"
    gc.collect()
    assert [ref() for ref in loops] == [None] * 10  # the per-loop map kept no loop alive
    assert server.stats().count("/v1/chat/completions") == 10


def test_close_reclaims_every_loops_connections(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor
) -> None:
    """Sync calls (private loop) and async calls on another thread's loop: close() frees both."""
    other = LoopThread(name="caller-loop")
    try:
        assert llm.generate(image) is not None
        assert other.run(llm.generate_async(image), timeout=30) is not None
        assert open_connections(server.port) == 2
        assert len(llm.async_pipeline._core.loops) == 2
        llm.close()
        assert open_connections(server.port) == 0
        assert len(llm.async_pipeline._core.loops) == 0
    finally:
        other.stop()


async def _call(llm: HybridPixelLLM, name: str, image: torch.Tensor) -> Any:
    if name == "encode_async":
        return await llm.encode_async(image)
    if name == "generate_encoded_async":
        return await llm.generate_encoded_async(object())  # type: ignore[arg-type]
    if name.startswith("generate"):
        return await getattr(llm, name)(image)
    return await getattr(llm, name)()


ASYNC_ENTRY_POINTS = [
    "generate_async",
    "generate_result_async",
    "generate_batch_async",
    "generate_batch_results_async",
    "generate_encoded_async",
    "encode_async",
    "health_async",
    "check_lm_studio_available_async",
]
SYNC_ENTRY_POINTS = [
    "generate",
    "generate_result",
    "generate_batch",
    "generate_batch_results",
    "health",
    "check_lm_studio_available",
]


@pytest.mark.parametrize("name", ASYNC_ENTRY_POINTS, ids=ASYNC_ENTRY_POINTS)
def test_async_use_after_close_raises_client_closed(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor, name: str
) -> None:
    """Every async entry point after close(): ClientClosedError (ERR_CLIENT_CLOSED), no request."""
    llm.close()
    with pytest.raises(ClientClosedError) as caught:
        asyncio.run(_call(llm, name, image))
    assert caught.value.code is ErrorCode.CLIENT_CLOSED
    assert server.stats().total == 0


@pytest.mark.parametrize("name", SYNC_ENTRY_POINTS, ids=SYNC_ENTRY_POINTS)
def test_sync_use_after_close_raises_client_closed(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor, name: str
) -> None:
    """Every sync entry point after close(): ClientClosedError (ERR_CLIENT_CLOSED), no request."""
    llm.close()
    method = getattr(llm, name)
    with pytest.raises(ClientClosedError) as caught:
        method(image) if name.startswith("generate") else method()
    assert caught.value.code is ErrorCode.CLIENT_CLOSED
    assert server.stats().total == 0


@pytest.mark.parametrize("raise_on_failure", [False, True], ids=["quiet", "raising"])
def test_sync_caller_released_by_close_in_flight(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor, raise_on_failure: bool
) -> None:
    """A sync generate held by a slow server, then close(): the caller gets ClientClosedError."""
    server.script([{"kind": "ok", "latency": 30}])
    outcome: list[BaseException | object] = []

    def caller() -> None:
        try:
            outcome.append(llm.generate(image, raise_on_failure=raise_on_failure))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    wait_for(lambda: open_connections(server.port) == 1)
    llm.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], ClientClosedError)
    assert open_connections(server.port) == 0


@pytest.mark.parametrize("batch", [False, True], ids=["generate", "batch"])
def test_async_caller_released_by_close_in_flight(
    server: SimulatorThread, llm: HybridPixelLLM, image: torch.Tensor, batch: bool
) -> None:
    """An async call held by a slow server, then aclose(): ClientClosedError, not None."""
    server.script([{"kind": "ok", "latency": 30}])

    async def scenario() -> BaseException | object:
        if batch:
            task = asyncio.ensure_future(llm.generate_batch_async([image]))
        else:
            task = asyncio.ensure_future(llm.generate_async(image))
        await asyncio.to_thread(wait_for, lambda: open_connections(server.port) == 1)
        await llm.aclose()
        try:
            return await asyncio.wait_for(task, 10)
        except BaseException as exc:
            return exc

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, ClientClosedError)
    assert open_connections(server.port) == 0
