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
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

__all__ = ["failure_count", "guard", "report_failure", "reset_failures", "safe"]

_log = logging.getLogger("pixel_llm_otel.telemetry")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_failures: dict[str, int] = {}


def report_failure(site: str) -> None:
    """Count (and log, the first time at ``site``) the exception being handled: call it from an
    ``except Exception:`` block. The cheapest guard, for code that runs on every call."""
    with _lock:
        count = _failures.get(site, 0)
        _failures[site] = count + 1
    if count == 0:
        _log.warning("telemetry failed in %s; ignoring (logged once per site)", site, exc_info=True)


class _Guard:
    """The context manager behind :func:`guard`: stateless, so one instance per site is reused.

    A plain class rather than ``@contextmanager``: telemetry enters ~15 guards per generate call,
    and a generator-based context manager costs several times more per use on that hot path.
    """

    __slots__ = ("site",)

    def __init__(self, site: str) -> None:
        self.site = site

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is not None and issubclass(exc_type, Exception):
            report_failure(self.site)  # sys.exc_info() is still the swallowed exception here
            return True
        return False


_guards: dict[str, _Guard] = {}


def guard(site: str) -> _Guard:
    """Run a block of telemetry code; an ``Exception`` inside it is logged once and swallowed."""
    found = _guards.get(site)
    if found is None:
        found = _guards.setdefault(site, _Guard(site))
    return found


def safe(site: str, default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a telemetry function: on an ``Exception``, log once and return ``default``."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception:
                report_failure(site)
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
