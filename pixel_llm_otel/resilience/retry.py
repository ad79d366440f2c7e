"""Retry with exponential backoff, full jitter, ``Retry-After`` and a deadline.

Delay before attempt ``n + 1`` (after attempt ``n`` failed, ``n`` from 1)::

    cap(n)   = min(max_delay, initial_delay * backoff_multiplier ** (n - 1))
    delay(n) = uniform(0, cap(n))       with jitter ("full jitter")
             = cap(n)                   without jitter
    with Retry-After r (the classifier's ``retry_after``, when ``respect_retry_after``):
    delay(n) = min(max_delay, max(delay(n), r))

The policy gives up with :class:`~pixel_llm_otel.errors.RetryExhausted` (raised ``from`` the last
error) when ``max_attempts`` attempts failed, or when the next sleep would end at or past the
deadline (``deadline`` seconds after the call started, or an enclosing
:func:`~pixel_llm_otel.resilience.deadline_scope`): it never sleeps past it. While a call runs,
:func:`remaining_budget` tells the attempt in flight how long it may still take; the HTTP client
caps its timeouts by it, so the deadline bounds the attempt in flight too. An error the
classifier calls non-retryable (or that ``retry_on`` rejects) is re-raised unchanged.

The same core (:class:`._retry_run._Run`, a small state machine that turns a failure into "sleep
this long" or "give up") drives a thin sync shell and a thin async shell. The happy path (first
attempt succeeds) reads the clock once, takes one short lock for the statistics and emits nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast, overload

from ..errors import DEFAULT_CLASSIFIER, ErrorClassifier
from . import _budget
from ._budget import deadline_scope, remaining_budget
from ._checks import config_error
from ._clock import AsyncSleep, Clock, Sleep, to_seconds
from ._retry_config import RetryConfig, RetryStats, is_testing, set_testing
from ._retry_run import _ATTEMPT, _Counters, _Run, current_attempt
from .events import GLOBAL_BUS, EventBus, Listener

__all__ = [
    "RetryConfig",
    "RetryPolicy",
    "RetryStats",
    "current_attempt",
    "deadline_scope",
    "is_testing",
    "remaining_budget",
    "retry",
    "set_testing",
]

P = ParamSpec("P")
R = TypeVar("R")


# --- the policy and its shells ------------------------------------------------------------
class RetryPolicy:
    """Retries a callable according to a :class:`RetryConfig`; keeps statistics; emits events.

    Thread-safe and reusable: one policy may serve many concurrent calls (sync and async).
    """

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        name: str = "retry",
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        async_sleep: AsyncSleep = asyncio.sleep,
        rng: random.Random | None = None,
        classifier: ErrorClassifier = DEFAULT_CLASSIFIER,
        bus: EventBus | None = None,
    ) -> None:
        if config is None:
            config = RetryConfig()
        elif not isinstance(config, RetryConfig):
            raise config_error("config", config, "a RetryConfig or None")
        if not isinstance(name, str) or not name:
            raise config_error("name", name, "a non-empty str")
        for arg, value in (("clock", clock), ("sleep", sleep), ("async_sleep", async_sleep)):
            if not callable(value):
                raise config_error(arg, value, "a callable")
        if rng is not None and not isinstance(rng, random.Random):
            raise config_error("rng", rng, "a random.Random or None")
        if not callable(getattr(classifier, "classify", None)):
            raise config_error("classifier", classifier, "an ErrorClassifier")
        if bus is not None and not isinstance(bus, EventBus):
            raise config_error("bus", bus, "an EventBus or None")
        self.config = config
        self.name = name
        self.classifier = classifier
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._rng = rng if rng is not None else random.Random()
        self._bus = bus if bus is not None else EventBus(parent=GLOBAL_BUS)
        self._counters = _Counters()

    def __repr__(self) -> str:
        return f"RetryPolicy(name={self.name!r}, config={self.config!r})"

    def _should_retry(self, exc: BaseException, retryable: bool) -> bool:
        retry_on = self.config.retry_on
        if retry_on is None:
            return retryable
        if isinstance(retry_on, tuple):
            return isinstance(exc, retry_on)
        return bool(retry_on(exc))

    # --- sync shell -----------------------------------------------------------------------
    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)``, retrying as configured."""
        return self._call(self.config._deadline, fn, args, kwargs)

    def run(self, fn: Callable[[], R], /, *, deadline: float | timedelta | None = None) -> R:
        """Call ``fn()``, retrying as configured; ``deadline`` (seconds or a timedelta, > 0)
        replaces the configured one for this call (``None``: the configured one)."""
        return self._call(self._deadline_for(deadline), fn, (), {})

    def _deadline_for(self, deadline: float | timedelta | None) -> float | None:
        if deadline is None:
            return self.config._deadline
        return to_seconds("deadline", deadline, positive=True)

    def _call(
        self,
        deadline: float | None,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        if _ATTEMPT.get() != 1:  # inside a later attempt of an outer retry: we start at 1
            token = _ATTEMPT.set(1)
            try:
                return self._call(deadline, fn, args, kwargs)
            finally:
                _ATTEMPT.reset(token)
        start = self._clock()
        budget_token = None if deadline is None else _budget.push(start + deadline, self._clock)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            return self._retry_sync(_Run(self, start, deadline), exc, fn, args, kwargs)
        except BaseException:
            self._count_aborted()
            raise
        finally:
            if budget_token is not None:
                _budget.pop(budget_token)
        counters = self._counters
        with counters.lock:
            counters.first_try += 1
        return result

    def _retry_sync(
        self,
        run: _Run,
        first_error: Exception,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        error: Exception | None = first_error
        try:
            while True:
                delay = run.next_delay(cast(Exception, error))
                if delay > 0:
                    self._sleep(delay)
                run.begin_attempt()
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    error = exc
                    continue
                run.succeeded()
                return result
        finally:
            error = None  # break the exception -> traceback -> frame cycle
            run.close()

    # --- async shell ----------------------------------------------------------------------
    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)``, retrying as configured."""
        return await self._call_async(self.config._deadline, fn, args, kwargs)

    async def run_async(
        self, fn: Callable[[], Awaitable[R]], /, *, deadline: float | timedelta | None = None
    ) -> R:
        """Await ``fn()``, retrying as configured; ``deadline`` (seconds or a timedelta, > 0)
        replaces the configured one for this call (``None``: the configured one)."""
        return await self._call_async(self._deadline_for(deadline), fn, (), {})

    def run_async_in_scope(self, fn: Callable[[], Awaitable[R]], /) -> Coroutine[Any, Any, R]:
        """:meth:`run_async` with no deadline of its own: the caller's open deadline scope
        (:func:`deadline_scope`) bounds the attempts and sleeps. For a caller that opened one
        for this very call, as the pipeline does per caption: the same deadline is not opened
        twice. Returns the coroutine itself, one frame less on each suspension of an attempt."""
        return self._call_async(None, fn, (), {})

    async def _call_async(
        self,
        deadline: float | None,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        if _ATTEMPT.get() != 1:
            token = _ATTEMPT.set(1)
            try:
                return await self._call_async(deadline, fn, args, kwargs)
            finally:
                _ATTEMPT.reset(token)
        start = self._clock()
        budget_token = None if deadline is None else _budget.push(start + deadline, self._clock)
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            return await self._retry_async(_Run(self, start, deadline), exc, fn, args, kwargs)
        except BaseException:
            self._count_aborted()
            raise
        finally:
            if budget_token is not None:
                _budget.pop(budget_token)
        counters = self._counters
        with counters.lock:
            counters.first_try += 1
        return result

    async def _retry_async(
        self,
        run: _Run,
        first_error: Exception,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        error: Exception | None = first_error
        try:
            while True:
                delay = run.next_delay(cast(Exception, error))
                if delay > 0:
                    await self._async_sleep(delay)
                run.begin_attempt()
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    error = exc
                    continue
                run.succeeded()
                return result
        finally:
            error = None  # break the exception -> traceback -> frame cycle
            run.close()

    def _count_aborted(self) -> None:
        with self._counters.lock:
            self._counters.aborted += 1

    # --- decorator ------------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or async); the wrapper keeps its signature."""
        return _wrap(self, fn)

    # --- statistics and listeners ---------------------------------------------------------
    def stats(self) -> RetryStats:
        """A consistent snapshot of the counters."""
        c = self._counters
        with c.lock:
            retried = c.retried_calls
            return RetryStats(
                calls=c.first_try + retried + c.aborted,
                attempts=c.first_try + c.aborted + retried + c.retries,
                retries=c.retries,
                successes=c.first_try + c.successes_after_retry,
                successes_after_retry=c.successes_after_retry,
                exhausted=c.exhausted,
                not_retried=c.not_retried,
            )

    def reset_stats(self) -> None:
        """Zero the counters."""
        fresh = _Counters()
        c = self._counters
        with c.lock:
            for slot in _Counters.__slots__:
                if slot != "lock":
                    setattr(c, slot, getattr(fresh, slot))

    def subscribe(self, listener: Listener) -> None:
        """Deliver this policy's events to ``listener`` (every event also reaches GLOBAL_BUS)."""
        self._bus.subscribe(listener)

    @property
    def bus(self) -> EventBus:
        return self._bus


def _wrap(policy: RetryPolicy, fn: Callable[P, R]) -> Callable[P, R]:
    if not callable(fn):
        raise config_error("fn", fn, "a callable")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise config_error("fn", fn, "a function returning a value (generators cannot be retried)")
    if inspect.iscoroutinefunction(fn):
        afn = cast(Callable[..., Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await policy.call_async(afn, *args, **kwargs)

        async_wrapper.__dict__["retry_policy"] = policy
        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return policy.call(fn, *args, **kwargs)

    wrapper.__dict__["retry_policy"] = policy
    return wrapper


_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(RetryConfig) if f.init)
_POLICY_OPTIONS = frozenset({"name", "clock", "sleep", "async_sleep", "rng", "classifier", "bus"})


@overload
def retry(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    config: RetryConfig | None = None, /, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry(config: Any = None, /, **options: Any) -> Any:
    """Retry decorator for sync and async callables: ``@retry``, ``@retry(max_attempts=5)``,
    ``@retry(config)`` or ``@retry(config, name="llm")``.

    ``options`` are :class:`RetryConfig` fields (overriding ``config``'s) and :class:`RetryPolicy`
    keywords (``name``, ``clock``, ``sleep``, ``async_sleep``, ``rng``, ``classifier``, ``bus``).
    Each decorated function gets its own policy, named after its qualified name unless ``name``
    is given; it is reachable as ``wrapper.retry_policy``.
    """
    if callable(config) and not isinstance(config, RetryConfig) and not options:
        return retry()(config)  # bare @retry
    unknown = sorted(set(options) - _CONFIG_FIELDS - _POLICY_OPTIONS)
    if unknown:
        raise config_error(
            unknown[0], options[unknown[0]], "a RetryConfig field or a RetryPolicy keyword"
        )
    if config is not None and not isinstance(config, RetryConfig):
        raise config_error("config", config, "a RetryConfig or None")
    fields = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
    policy_options = {k: v for k, v in options.items() if k in _POLICY_OPTIONS}
    base = config if config is not None else RetryConfig()
    final = dataclasses.replace(base, **fields) if fields else base

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = policy_options.get("name") or getattr(fn, "__qualname__", None) or "retry"
        policy = RetryPolicy(final, **{**policy_options, "name": name})
        return _wrap(policy, fn)

    return decorate
