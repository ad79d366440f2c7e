"""``ErrorMetrics``: in-process, thread-safe counters of errors and resilience events.

It is a resilience events listener (``GLOBAL_BUS.subscribe(metrics)`` or ``breaker.subscribe``)
plus :meth:`ErrorMetrics.record_error` for errors the caller sees. What is counted:

- errors by type, code and category: every :meth:`record_error` call, and the error of every
  retried attempt (a ``RetryAttempt`` event: those errors are absorbed by the retry, so nobody
  else reports them). The error that finally escapes a call is counted when its caller records
  it, so nothing is counted twice;
- retries: ``retries`` (``RetryAttempt``), ``successes_after_retry`` (``RetrySucceeded``),
  ``exhausted`` by reason (``RetryExhaustedEvent``), and ``attempts``: the attempts made by calls
  that needed a retry (from the success and exhaustion events);
- circuit breakers: transitions by (name, from, to), the current state of each, rejections;
- fallbacks: by (strategy, result).

:meth:`ErrorMetrics.summary` returns a JSON-friendly dict; :meth:`ErrorMetrics.reset` zeroes it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from ..errors import DEFAULT_CLASSIFIER, Classification, ErrorClassifier
from ..resilience.events import (
    CircuitBreakerRejected,
    CircuitBreakerStateChange,
    FallbackInvoked,
    ResilienceEvent,
    RetryAttempt,
    RetryExhaustedEvent,
    RetrySucceeded,
)

__all__ = ["ErrorMetrics"]


class ErrorMetrics:
    """Counts errors and resilience events; safe to share between threads and event loops."""

    def __init__(self, *, classifier: ErrorClassifier = DEFAULT_CLASSIFIER) -> None:
        self._classifier = classifier
        self._lock = threading.Lock()
        self._init_counters()

    def _init_counters(self) -> None:
        self._by_type: Counter[str] = Counter()
        self._by_code: Counter[str] = Counter()
        self._by_category: Counter[str] = Counter()
        self._retries = 0
        self._retried_codes: Counter[str] = Counter()
        self._successes_after_retry = 0
        self._attempts = 0
        self._exhausted: Counter[str] = Counter()
        self._transitions: Counter[tuple[str, str, str]] = Counter()
        self._states: dict[str, str] = {}
        self._rejected: Counter[str] = Counter()
        self._fallbacks: Counter[tuple[str, str]] = Counter()

    # --- inputs ----------------------------------------------------------------------------
    def record_error(self, exc: BaseException) -> Classification:
        """Count ``exc`` (classified by the classifier) and return its classification."""
        result = self._classifier.classify(exc)
        with self._lock:
            self._count_error(result.error_type, str(result.code), str(result.category))
        return result

    def on_event(self, event: ResilienceEvent) -> None:
        """The resilience listener entry point; unknown events are ignored."""
        if isinstance(event, RetryAttempt):
            category = str(self._classifier.classify(event.error).category)
            with self._lock:
                self._retries += 1
                self._retried_codes[event.error_code] += 1
                self._count_error(event.error_type, event.error_code, category)
        elif isinstance(event, RetrySucceeded):
            with self._lock:
                self._successes_after_retry += 1
                self._attempts += event.attempts
        elif isinstance(event, RetryExhaustedEvent):
            with self._lock:
                self._exhausted[event.reason] += 1
                self._attempts += event.attempts
        elif isinstance(event, CircuitBreakerStateChange):
            with self._lock:
                self._transitions[(event.name, event.from_state, event.to_state)] += 1
                self._states[event.name] = event.to_state
        elif isinstance(event, CircuitBreakerRejected):
            with self._lock:
                self._rejected[event.name] += 1
        elif isinstance(event, FallbackInvoked):
            with self._lock:
                self._fallbacks[(event.strategy, event.result)] += 1

    def _count_error(self, error_type: str, code: str, category: str) -> None:
        self._by_type[error_type] += 1
        self._by_code[code] += 1
        self._by_category[category] += 1

    # --- outputs ---------------------------------------------------------------------------
    @property
    def total_errors(self) -> int:
        with self._lock:
            return sum(self._by_code.values())

    def breaker_state(self, name: str) -> str | None:
        """The last state breaker ``name`` moved to (``None``: no transition seen)."""
        with self._lock:
            return self._states.get(name)

    def summary(self) -> dict[str, Any]:
        """A consistent, JSON-friendly snapshot of every counter (keys sorted)."""
        with self._lock:
            transitions: dict[str, dict[str, int]] = {}
            for (name, from_state, to_state), n in sorted(self._transitions.items()):
                transitions.setdefault(name, {})[f"{from_state}->{to_state}"] = n
            by_strategy: dict[str, dict[str, int]] = {}
            for (strategy, result), n in sorted(self._fallbacks.items()):
                by_strategy.setdefault(strategy, {})[result] = n
            return {
                "errors": {
                    "total": sum(self._by_code.values()),
                    "by_type": _sorted(self._by_type),
                    "by_code": _sorted(self._by_code),
                    "by_category": _sorted(self._by_category),
                },
                "retries": {
                    "retries": self._retries,
                    "retried_by_code": _sorted(self._retried_codes),
                    "successes_after_retry": self._successes_after_retry,
                    "attempts": self._attempts,
                    "exhausted": sum(self._exhausted.values()),
                    "exhausted_by_reason": _sorted(self._exhausted),
                },
                "circuit_breakers": {
                    "transitions": transitions,
                    "states": dict(sorted(self._states.items())),
                    "rejected": _sorted(self._rejected),
                },
                "fallbacks": {
                    "served": sum(n for (_, r), n in self._fallbacks.items() if r == "served"),
                    "empty": sum(n for (_, r), n in self._fallbacks.items() if r == "empty"),
                    "by_strategy": by_strategy,
                },
            }

    def reset(self) -> None:
        """Zero every counter and forget breaker states."""
        with self._lock:
            self._init_counters()


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))
