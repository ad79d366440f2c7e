"""A gate in an encoder's forward pass: proves the event loop runs while a pass is in flight.

``ForwardGate(encoder)`` replaces ``encoder._forward``: each pass does its real torch work, then
waits until :meth:`ForwardGate.release` is called (at most ``timeout`` seconds), then does the
work again. A test starts an encode, waits *on the event loop* until a pass is :attr:`entered`,
and releases it from the loop. Had the pass run on the loop's thread, the loop could not have
run that code: the pass times out at the gate and :attr:`released_in_time` is False. Nothing
depends on how fast the machine is or how the scheduler slices time; the deadlines only bound a
broken run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

#: The longest a pass waits at the gate, and a test waits for a pass to reach it.
GATE_TIMEOUT_S = 30.0


class ForwardGate:
    """Wraps ``encoder._forward``; :meth:`restore` puts the original back."""

    def __init__(self, encoder: Any, *, timeout: float = GATE_TIMEOUT_S) -> None:
        self._encoder = encoder
        self._own = "_forward" in vars(encoder)  # an instance attribute already (not a method)
        self._real = encoder._forward
        self._timeout = timeout
        self._entered = threading.Event()
        self._release = threading.Event()
        self.pass_threads: set[int] = set()
        self.released_in_time = True
        encoder._forward = self._forward

    def _forward(self, batch: Any) -> Any:
        out = self._real(batch)  # real torch work before the gate...
        self.pass_threads.add(threading.get_ident())
        self._entered.set()
        if not self._release.wait(self._timeout):
            self.released_in_time = False
            return out
        return self._real(batch)  # ...and after it

    @property
    def entered(self) -> bool:
        """A forward pass has done its first piece of work and waits at the gate."""
        return self._entered.is_set()

    async def wait_entered(self) -> None:
        """On the loop: wait (sleeping, so the loop keeps running) until a pass is at the gate."""
        deadline = time.monotonic() + self._timeout
        while not self._entered.is_set():
            if time.monotonic() > deadline:
                raise AssertionError(f"no forward pass reached the gate within {self._timeout}s")
            await asyncio.sleep(0.001)

    def release(self) -> None:
        self._release.set()

    def restore(self) -> None:
        self._release.set()
        if self._own:
            self._encoder._forward = self._real
        else:
            del self._encoder._forward
