"""The I/O-free core of :mod:`.retry`: the state of one call after its first failure.

:class:`_Run` turns each failure into "sleep this long" or "give up" (raising); it never sleeps
and never calls the function, so the sync and async shells of
:class:`~pixel_llm_otel.resilience.retry.RetryPolicy` share it. :class:`_Counters` holds a
policy's statistics, :func:`current_attempt` the running attempt's number.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Final

from ..errors import RetryExhausted
from . import _budget
from ._retry_config import _TESTING
from .events import RetryAttempt, RetryExhaustedEvent, RetrySucceeded

if TYPE_CHECKING:
    from .retry import RetryPolicy

__all__ = ["current_attempt"]

#: 1-based number of the running attempt of the innermost retry; 1 outside any retry.
_ATTEMPT: Final[ContextVar[int]] = ContextVar("pixel_llm_otel_retry_attempt", default=1)


def current_attempt() -> int:
    """The 1-based attempt number of the innermost running retry (1 outside any retry).

    The HTTP layer reads it to set ``http.request.resend_count`` (``current_attempt() - 1``).
    """
    return _ATTEMPT.get()


class _Counters:
    __slots__ = (
        "aborted",
        "exhausted",
        "first_try",
        "lock",
        "not_retried",
        "retried_calls",
        "retries",
        "successes_after_retry",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first_try = 0  # calls whose first attempt returned (the happy path)
        self.retried_calls = 0  # calls whose first attempt raised an Exception
        self.aborted = 0  # calls whose first attempt raised a BaseException (not Exception)
        self.retries = 0
        self.successes_after_retry = 0
        self.exhausted = 0
        self.not_retried = 0


class _Run:
    """The state of one call after its first failure: turns each failure into a delay or raises.

    Shared by the sync and async shells; it never sleeps and never calls the function.
    """

    __slots__ = ("attempt", "deadline", "policy", "start", "token")

    def __init__(self, policy: RetryPolicy, start: float, deadline: float | None) -> None:
        self.policy = policy
        self.start = start
        self.deadline = deadline  # seconds after ``start``; None: no deadline
        self.attempt = 1
        self.token: Token[int] | None = None
        with policy._counters.lock:
            policy._counters.retried_calls += 1

    def next_delay(self, exc: Exception) -> float:
        """Seconds to sleep after ``exc`` ended the current attempt; raises to give up.

        Raises ``exc`` itself when it is not retryable, or :class:`RetryExhausted` from it.
        """
        policy = self.policy
        config = policy.config
        info = policy.classifier.classify(exc)
        counters = policy._counters
        if not policy._should_retry(exc, info.retryable):
            with counters.lock:
                counters.not_retried += 1
            if self.attempt > 1:
                policy._bus.emit(
                    RetryExhaustedEvent(
                        name=policy.name,
                        attempts=self.attempt,
                        error_type=info.error_type,
                        error_code=str(info.code),
                        reason="not_retryable",
                        error=exc,
                    )
                )
            raise exc
        testing = _TESTING.enabled
        max_attempts = config.max_attempts
        if testing and _TESTING.attempts is not None:
            max_attempts = _TESTING.attempts
        if self.attempt >= max_attempts:
            self._exhaust(exc, info.error_type, str(info.code), "max_attempts")
        delay = config.backoff(self.attempt, policy._rng)
        if config.respect_retry_after and info.retry_after is not None:
            delay = min(config._max, max(delay, info.retry_after))
        if testing:
            delay = 0.0
        else:
            # This call's deadline, or an enclosing one (a batch, a caption's deadline scope).
            budget = _budget.current_budget()
            if budget is not None and delay >= budget.remaining():
                self._exhaust(exc, info.error_type, str(info.code), "deadline")
        policy._bus.emit(
            RetryAttempt(
                name=policy.name,
                attempt=self.attempt,
                delay=delay,
                error_type=info.error_type,
                error_code=str(info.code),
                error=exc,
            )
        )
        return delay

    def _exhaust(self, exc: Exception, error_type: str, code: str, reason: str) -> None:
        policy = self.policy
        with policy._counters.lock:
            policy._counters.exhausted += 1
        policy._bus.emit(
            RetryExhaustedEvent(
                name=policy.name,
                attempts=self.attempt,
                error_type=error_type,
                error_code=code,
                reason=reason,
                error=exc,
            )
        )
        error = RetryExhausted(
            attempts=self.attempt, last_error=exc, context={"reason": reason, "policy": policy.name}
        )
        raise error from exc

    def begin_attempt(self) -> None:
        """The sleep is over and the next attempt starts: only now is it counted."""
        with self.policy._counters.lock:
            self.policy._counters.retries += 1
        self.attempt += 1
        if self.token is None:
            self.token = _ATTEMPT.set(self.attempt)
        else:
            _ATTEMPT.set(self.attempt)

    def succeeded(self) -> None:
        policy = self.policy
        with policy._counters.lock:
            policy._counters.successes_after_retry += 1
        policy._bus.emit(RetrySucceeded(name=policy.name, attempts=self.attempt))

    def close(self) -> None:
        if self.token is not None:
            _ATTEMPT.reset(self.token)
            self.token = None
