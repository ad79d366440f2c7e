"""Cancelling generate_async at each of its await points: CancelledError, and nothing leaks.

The await points of one caption: the encoder pass, waiting for a request slot, connecting and
sending, waiting for the status line, reading the body, the retry's backoff sleep and the fallback
chain. Each test parks a call at one of them (the server or an injected collaborator signals when
it got there), cancels it, and checks: the task ends in ``CancelledError``; the breaker counted
no failure; the slot is free and the session usable (a next call captions); the server sees the
connection closed; no task of the pipeline is left behind.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import torch
from hostile import Conn, HostileServer
from support import FakeEncoder, make_llm

from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience import FallbackConfig

WAIT = 5.0  # seconds to wait for a condition (never reached when things work)


class Gate:
    """An await point held open: ``entered`` is set when the call reaches it; it never returns."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._never = asyncio.Event()

    async def hold(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self._never.wait()


class GatedEncoder(FakeEncoder):
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        await self.gate.hold()
        raise AssertionError("unreachable")


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while not condition():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


async def _no_tasks_left(llm: HybridPixelLLM, before: set[asyncio.Task[Any]]) -> None:
    await llm.aclose()
    current = asyncio.current_task()
    await _until(lambda: not (set(asyncio.all_tasks()) - before - {current}))


async def _server_event(hostile: HostileServer, name: str) -> None:
    event = hostile.event(name)
    assert await asyncio.to_thread(event.wait, WAIT), name


@pytest.fixture
async def tasks_before() -> set[asyncio.Task[Any]]:
    """The tasks alive before the test (pytest's own)."""
    return set(asyncio.all_tasks())


async def _cancel_and_check(
    llm: HybridPixelLLM,
    task: asyncio.Task[Any],
    hostile: HostileServer,
    scenario: str | None,
    tasks_before: set[asyncio.Task[Any]],
) -> None:
    """Cancel ``task``; the breaker, the slot, the session and the connection are fine."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = llm.circuit_breaker.snapshot()
    assert (snapshot.failures, snapshot.state.value) == (0, "closed")
    if scenario is not None:
        await _until(lambda: hostile.active(scenario) == 0)  # the connection was closed
        hostile.handlers[scenario] = hostile.handlers["ok"]
        follow_up = await llm.generate_result_async(torch.rand(3, 8, 8))
        assert follow_up.text == "a caption"  # the slot is free and the session usable
    await _no_tasks_left(llm, tasks_before)


def _parked(hostile: HostileServer, name: str, signal: str) -> str:
    """A scenario ``name`` that signals ``name:<signal>`` and then holds its connection."""
    hostile.event(f"{name}:{signal}").clear()

    async def handler(c: Conn) -> None:
        if signal == "headers":
            await c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            hostile.signal(f"{name}:headers")
        await c.hold()

    return hostile.add(name, handler)


async def _make(hostile: HostileServer, scenario: str, **options: Any) -> HybridPixelLLM:
    mode = options.pop("mode", "no-raise")
    return make_llm(hostile.url(scenario), mode, io.StringIO(), deadline=30.0, **options)


@pytest.mark.parametrize("signal", ["request", "headers"], ids=["awaiting-status", "reading-body"])
async def test_cancel_while_the_request_is_in_flight(
    hostile: HostileServer,
    image: torch.Tensor,
    tasks_before: set[asyncio.Task[Any]],
    signal: str,
) -> None:
    """Cancelled while waiting for the status line or the body: the connection is closed."""
    name = f"cancel-{signal}"
    _parked(hostile, name, signal)
    llm = await _make(hostile, name)
    task = asyncio.create_task(llm.generate_result_async(image))
    await _server_event(hostile, f"{name}:{signal}")
    await _cancel_and_check(llm, task, hostile, name, tasks_before)


async def test_cancel_in_the_encoder(
    hostile: HostileServer, image: torch.Tensor, tasks_before: set[asyncio.Task[Any]]
) -> None:
    """Cancelled during the encoder pass: nothing was sent."""
    gate = Gate()
    llm = await _make(hostile, "ok", encoder=GatedEncoder(gate))
    before = len(hostile.seen("ok"))
    task = asyncio.create_task(llm.generate_result_async(image))
    await asyncio.wait_for(gate.entered.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(hostile.seen("ok")) == before
    assert llm.circuit_breaker.snapshot().failures == 0
    await _no_tasks_left(llm, tasks_before)


async def test_cancel_while_waiting_for_a_request_slot(
    hostile: HostileServer, image: torch.Tensor, tasks_before: set[asyncio.Task[Any]]
) -> None:
    """Cancelled while queued behind max_concurrency=1: the slot is not lost."""
    name = "cancel-slot"
    _parked(hostile, name, "request")
    llm = await _make(hostile, name, max_concurrency=1)
    holder = asyncio.create_task(llm.generate_result_async(image))
    await _server_event(hostile, f"{name}:request")
    waiter = asyncio.create_task(llm.generate_result_async(image))
    slots = llm._target._core._state().slots  # this loop's request slots
    await _until(lambda: bool(slots._waiters))  # the waiter is queued (it cannot get further)
    assert len(hostile.seen(name)) == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await _cancel_and_check(llm, holder, hostile, name, tasks_before)


async def test_cancel_during_the_retry_backoff(
    hostile: HostileServer, image: torch.Tensor, tasks_before: set[asyncio.Task[Any]]
) -> None:
    """Cancelled in the backoff sleep after a 500: no failure counted, nothing left open."""
    gate = Gate()
    llm = await _make(hostile, "echo-plain", async_sleep=gate.hold)
    task = asyncio.create_task(llm.generate_result_async(image))
    await asyncio.wait_for(gate.entered.wait(), WAIT)
    await _cancel_and_check(llm, task, hostile, None, tasks_before)


async def test_cancel_in_the_fallback_chain(
    hostile: HostileServer, image: torch.Tensor, tasks_before: set[asyncio.Task[Any]]
) -> None:
    """Cancelled inside an async custom fallback after the call failed."""
    gate = Gate()

    async def custom(context: object) -> str:
        await gate.hold()
        return "unreachable"

    fallback: Callable[[object], Awaitable[str]] = custom
    llm = await _make(
        hostile, "redirect-loop", fallback=FallbackConfig(order=("custom",), custom=fallback)
    )
    task = asyncio.create_task(llm.generate_result_async(image))
    await asyncio.wait_for(gate.entered.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _no_tasks_left(llm, tasks_before)


async def test_a_call_queued_past_its_deadline_times_out_typed(
    hostile: HostileServer, image: torch.Tensor, tasks_before: set[asyncio.Task[Any]]
) -> None:
    """Queued behind max_concurrency=1 past its deadline: ERR_TIMEOUT_TOTAL, nothing sent."""
    name = "slot-deadline"
    _parked(hostile, name, "request")
    llm = await _make(hostile, name, max_concurrency=1)
    holder = asyncio.create_task(llm.generate_result_async(image))
    await _server_event(hostile, f"{name}:request")
    waited = await llm.generate_result_async(image, deadline=0.1)
    assert waited.error is not None
    assert waited.error.code == "ERR_TIMEOUT_TOTAL"
    assert "no request slot" in str(waited.error)
    assert waited.attempts == 0
    assert len(hostile.seen(name)) == 1  # the queued call never reached the server
    await _cancel_and_check(llm, holder, hostile, name, tasks_before)
