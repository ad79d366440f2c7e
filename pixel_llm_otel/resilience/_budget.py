"""The time budget of the running call: how long the attempt in flight may still take.

A retry with a ``deadline`` opens a budget for its whole call (every attempt and every sleep);
callers above it may open one too (:func:`deadline_scope`, e.g. a whole batch). Budgets nest:
what is left is the smallest remainder of every enclosing one, each read on its own clock.

The I/O layer asks :func:`remaining_budget` when an attempt starts and caps its timeouts by it,
so an attempt in flight never outlives the deadline. The value lives in a
:class:`~contextvars.ContextVar`: it follows the call into its tasks and threads' contexts and
costs one lookup when nobody set it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Final

from ._clock import Clock

__all__ = ["Budget", "current_budget", "deadline_scope", "remaining_budget"]


class Budget:
    """A deadline on one clock, inside an optional enclosing budget."""

    __slots__ = ("clock", "end", "parent")

    def __init__(self, end: float, clock: Clock, parent: Budget | None) -> None:
        self.end = end
        self.clock = clock
        self.parent = parent

    def remaining(self) -> float:
        """Seconds left (negative once past), the smallest of this and every enclosing budget."""
        left = self.end - self.clock()
        parent = self.parent
        while parent is not None:
            left = min(left, parent.end - parent.clock())
            parent = parent.parent
        return left


_BUDGET: Final[ContextVar[Budget | None]] = ContextVar("pixel_llm_otel_budget", default=None)


def current_budget() -> Budget | None:
    """The innermost open budget, or ``None``."""
    return _BUDGET.get()


def remaining_budget() -> float | None:
    """Seconds left before the innermost deadline of the running call (may be <= 0).

    ``None`` when no retry with a deadline and no :func:`deadline_scope` encloses the caller.
    The HTTP client caps its connect, read and total timeouts of an attempt by this.
    """
    budget = _BUDGET.get()
    return None if budget is None else budget.remaining()


def push(end: float, clock: Clock) -> Token[Budget | None]:
    """Open a budget that ends at ``end`` (on ``clock``); :func:`pop` it with the token."""
    return _BUDGET.set(Budget(end, clock, _BUDGET.get()))


def pop(token: Token[Budget | None]) -> None:
    _BUDGET.reset(token)


@contextmanager
def deadline_scope(seconds: float | None, *, clock: Clock = time.monotonic) -> Iterator[None]:
    """Bound everything inside the block to ``seconds`` from now (``None``: no bound added).

    Retries inside it never sleep past it, and the client caps each attempt's timeouts by the
    time left, so the block returns within ``seconds`` plus a small slack.
    """
    if seconds is None:
        yield
        return
    token = push(clock() + seconds, clock)
    try:
        yield
    finally:
        pop(token)
