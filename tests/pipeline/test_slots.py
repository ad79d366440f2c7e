"""Request slots: first come first served, waits bounded by a deadline, nothing lost on cancel."""

from __future__ import annotations

import asyncio

import pytest

from pixel_llm_otel.pipeline._slots import Slots

WAIT = 5.0  # seconds to wait for a condition (never reached when things work)


async def _waiting(slots: Slots, count: int) -> None:
    """Until ``count`` calls wait in line (a deadline, never a sleep for luck)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while sum(not w.done() for w in slots._waiters) < count:
        assert loop.time() < end, "the calls never queued"
        await asyncio.sleep(0)


async def test_free_slots_are_taken_without_waiting_then_calls_queue_in_order() -> None:
    """Two slots: two calls take them at once; queued calls get them in arrival order."""
    slots = Slots(2)
    assert slots.try_acquire()
    await slots.acquire(1.0)
    assert not slots.try_acquire()
    order: list[int] = []

    async def call(n: int) -> None:
        await slots.acquire(WAIT)
        order.append(n)

    tasks = [asyncio.create_task(call(n)) for n in range(3)]
    await _waiting(slots, 3)
    for _ in range(3):
        slots.release()
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert order == [0, 1, 2]
    assert not slots.try_acquire()  # the two released by the queued calls were never returned


async def test_a_wait_past_its_bound_times_out_and_the_line_moves_on() -> None:
    """The first waiter's short bound expires; the next one still gets the slot."""
    slots = Slots(1)
    assert slots.try_acquire()
    short = asyncio.create_task(slots.acquire(0.05))
    patient = asyncio.create_task(slots.acquire(WAIT))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(short, WAIT)
    assert not patient.done()
    slots.release()
    await asyncio.wait_for(patient, WAIT)
    slots.release()
    assert slots.try_acquire()


async def test_no_slot_and_no_time_left_fails_at_once() -> None:
    """A bound of zero with every slot taken: TimeoutError without waiting."""
    slots = Slots(1)
    assert slots.try_acquire()
    with pytest.raises(TimeoutError):
        await slots.acquire(0.0)
    assert slots._waiters == type(slots._waiters)()


@pytest.mark.parametrize("granted", [False, True], ids=["while-waiting", "just-granted"])
async def test_a_cancelled_waiter_never_loses_a_slot(granted: bool) -> None:
    """Cancelled in line, or just as the slot was handed over: the slot goes to the next."""
    slots = Slots(1)
    assert slots.try_acquire()
    first = asyncio.create_task(slots.acquire(WAIT))
    second = asyncio.create_task(slots.acquire(WAIT))
    await _waiting(slots, 2)
    if granted:
        slots.release()  # handed to ``first``, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    if not granted:
        slots.release()
    await asyncio.wait_for(second, WAIT)
    slots.release()
    assert slots.try_acquire()


async def test_the_deadline_heap_stays_bounded() -> None:
    """Thousands of bounded waits that were granted leave no growing heap behind."""
    slots = Slots(1)
    assert slots.try_acquire()
    for _ in range(2000):
        waiter = asyncio.create_task(slots.acquire(60.0))
        await _waiting(slots, 1)
        slots.release()
        await asyncio.wait_for(waiter, WAIT)
    assert len(slots._deadlines) <= 130
