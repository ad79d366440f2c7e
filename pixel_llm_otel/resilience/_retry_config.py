"""Retry configuration, statistics and the testing switch (used by :mod:`.retry`).

See :mod:`pixel_llm_otel.resilience.retry` for the backoff formula and the behaviour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ._checks import check_int, config_error
from ._clock import to_seconds

__all__ = ["RetryConfig", "RetryOn", "RetryStats", "is_testing", "set_testing"]

RetryOn = (
    tuple[type[BaseException], ...] | type[BaseException] | Callable[[BaseException], bool] | None
)


# --- testing mode -------------------------------------------------------------------------
class _Testing:
    __slots__ = ("attempts", "enabled")

    def __init__(self) -> None:
        self.enabled = False
        self.attempts: int | None = None


_TESTING = _Testing()


def set_testing(enabled: bool, *, attempts: int | None = None) -> None:
    """Testing mode for users' test suites: backoff sleeps are skipped (no waiting at all).

    ``attempts`` (when given) replaces every policy's ``max_attempts``, e.g. ``attempts=1`` to
    turn retries off. Events and statistics still report every attempt (with ``delay=0``).
    """
    if not isinstance(enabled, bool):
        raise config_error("enabled", enabled, "a bool")
    if attempts is not None:
        check_int("attempts", attempts, minimum=1)
    _TESTING.attempts = attempts if enabled else None
    _TESTING.enabled = enabled


def is_testing() -> bool:
    """Whether :func:`set_testing` turned testing mode on."""
    return _TESTING.enabled


# --- configuration ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How to retry. Durations are seconds (int/float) or :class:`~datetime.timedelta`.

    The defaults suit an LLM call: 3 attempts, 0.5 s then about 1 s of (jittered) backoff, at most
    10 s per sleep, everything within 60 s.
    """

    max_attempts: int = 3  # total attempts, the first included; >= 1
    initial_delay: float | timedelta = 0.5
    max_delay: float | timedelta = 10.0
    backoff_multiplier: float = 2.0  # >= 1
    jitter: bool = True  # full jitter: uniform(0, cap)
    deadline: float | timedelta | None = 60.0  # budget for all attempts and sleeps; None: none
    # None: ask the classifier (its ``retryable`` flag); a tuple of exception types; a predicate
    retry_on: RetryOn = None
    respect_retry_after: bool = True
    _initial: float = field(init=False, repr=False, compare=False)
    _max: float = field(init=False, repr=False, compare=False)
    _deadline: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("max_attempts", self.max_attempts, minimum=1)
        initial = to_seconds("initial_delay", self.initial_delay)
        maximum = to_seconds("max_delay", self.max_delay)
        if maximum < initial:
            raise config_error("max_delay", self.max_delay, f">= initial_delay ({initial}s)")
        mult = self.backoff_multiplier
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or not math.isfinite(mult):
            raise config_error("backoff_multiplier", mult, "a finite number >= 1")
        if mult < 1:
            raise config_error("backoff_multiplier", mult, "a finite number >= 1")
        for name in ("jitter", "respect_retry_after"):
            if not isinstance(getattr(self, name), bool):
                raise config_error(name, getattr(self, name), "a bool")
        deadline = None
        if self.deadline is not None:
            deadline = to_seconds("deadline", self.deadline, positive=True)
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            retry_on = (retry_on,)  # a lone exception class: callable, but not a predicate
            object.__setattr__(self, "retry_on", retry_on)
        if isinstance(retry_on, tuple):
            if not retry_on or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
            ):
                raise config_error("retry_on", retry_on, "a non-empty tuple of exception classes")
        elif retry_on is not None and not callable(retry_on):
            raise config_error(
                "retry_on", retry_on, "None, exception classes or a predicate (exc) -> bool"
            )
        object.__setattr__(self, "_initial", initial)
        object.__setattr__(self, "_max", maximum)
        object.__setattr__(self, "_deadline", deadline)

    @property
    def deadline_seconds(self) -> float | None:
        """The deadline in seconds (``None``: no deadline)."""
        return self._deadline

    def cap(self, attempt: int) -> float:
        """``min(max_delay, initial_delay * backoff_multiplier ** (attempt - 1))``."""
        try:
            raw = self._initial * self.backoff_multiplier ** (attempt - 1)
        except OverflowError:
            return self._max
        return min(self._max, raw)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The delay after failed attempt ``attempt`` (>= 1), before any ``Retry-After``."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise config_error("attempt", attempt, "an int >= 1")
        cap = self.cap(attempt)
        return rng.uniform(0.0, cap) if self.jitter else cap


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryStats:
    """A snapshot of a policy's counters."""

    calls: int  # calls started
    attempts: int  # attempts made, first ones included
    retries: int  # sleeps taken (attempts after the first)
    successes: int  # calls that returned
    successes_after_retry: int  # ... of which after at least one retry
    exhausted: int  # calls that ended in RetryExhausted
    not_retried: int  # calls that ended in a non-retryable error
