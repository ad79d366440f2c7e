"""Telemetry must never break the app: catch, log once per site, carry on.

Every entry point from the pipeline or the resilience core into telemetry code (observer scopes,
the event listener, HTTP hooks, metric callbacks) runs under :func:`guard` or :func:`safe`. An
exception there is caught, logged with its traceback the first time it happens at that site, and
counted; the app never sees it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["failure_count", "guard", "reset_failures", "safe"]

_log = logging.getLogger("pixel_llm_otel.telemetry")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_failures: dict[str, int] = {}


def _report(site: str) -> None:
    with _lock:
        count = _failures.get(site, 0)
        _failures[site] = count + 1
    if count == 0:
        _log.warning("telemetry failed in %s; ignoring (logged once per site)", site, exc_info=True)


@contextmanager
def guard(site: str) -> Iterator[None]:
    """Run a block of telemetry code; an ``Exception`` inside it is logged once and swallowed."""
    try:
        yield
    except Exception:
        _report(site)


def safe(site: str, default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a telemetry function: on an ``Exception``, log once and return ``default``."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception:
                _report(site)
                return default

        return wrapper

    return decorate


def failure_count(site: str | None = None) -> int:
    """How many telemetry failures were swallowed (at ``site``, or everywhere)."""
    with _lock:
        if site is None:
            return sum(_failures.values())
        return _failures.get(site, 0)


def reset_failures() -> None:
    """Forget swallowed failures, so the next one at each site is logged again (tests)."""
    with _lock:
        _failures.clear()
