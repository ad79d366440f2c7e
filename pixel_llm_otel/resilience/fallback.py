"""Fallbacks: what to answer when the call failed for good.

Strategies, tried in ``FallbackConfig.order`` until one serves:

- ``cache``: the last good result remembered for the same key (``remember``), if younger than
  ``cache_ttl``; a bounded LRU of ``cache_max_entries`` keys. No key: empty.
- ``default``: ``default_value`` when one is configured (``MISSING`` means none; ``None`` is a
  value).
- ``custom``: ``custom(FallbackContext)``, sync or async. Returning ``None`` or ``MISSING`` means
  empty; raising counts as empty and is logged with its traceback.

One ``FallbackInvoked`` event per strategy tried. The strategy walk is one generator shared by
:meth:`FallbackManager.resolve` and :meth:`FallbackManager.resolve_async`; only calling ``custom``
differs between them.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar, cast

from ..errors import DEFAULT_CLASSIFIER, ErrorClassifier
from ._checks import check_int, config_error
from ._clock import Clock, to_seconds
from .events import GLOBAL_BUS, EventBus, FallbackInvoked, Listener

__all__ = [
    "MISSING",
    "FallbackConfig",
    "FallbackContext",
    "FallbackManager",
    "FallbackResult",
    "FallbackStats",
]

T = TypeVar("T")
_log = logging.getLogger("pixel_llm_otel.resilience.fallback")

STRATEGIES: Final = ("cache", "default", "custom")


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: "No value": no default configured, or a custom function with nothing to offer.
MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackContext:
    """What a custom fallback function is told."""

    key: Hashable | None
    error: BaseException
    extra: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FallbackConfig:
    """Which fallbacks to try, in which order. Validated at construction."""

    enabled: bool = True
    order: tuple[str, ...] = STRATEGIES
    cache_ttl: float | timedelta | None = 3600.0  # seconds; None: entries never expire
    cache_max_entries: int = 1024
    default_value: object = MISSING
    custom: Callable[[FallbackContext], object] | None = None  # sync or async
    _ttl: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise config_error("enabled", self.enabled, "a bool")
        order = self.order
        if isinstance(order, list):
            order = tuple(order)
            object.__setattr__(self, "order", order)
        if (
            not isinstance(order, tuple)
            or any(s not in STRATEGIES for s in order)
            or len(set(order)) != len(order)
        ):
            raise config_error("order", order, f"a tuple of distinct strategies from {STRATEGIES}")
        ttl = self.cache_ttl
        object.__setattr__(
            self, "_ttl", None if ttl is None else to_seconds("cache_ttl", ttl, positive=True)
        )
        check_int("cache_max_entries", self.cache_max_entries, minimum=1)
        if self.custom is not None and not callable(self.custom):
            raise config_error("custom", self.custom, "None or a callable (context) -> value")


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackResult(Generic[T]):
    """What the fallbacks produced."""

    value: T | None  # the served value (None when nothing served)
    strategy: str | None  # the strategy that served, or None
    served: bool
    tried: tuple[str, ...]  # the strategies tried, in order


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackStats:
    """A snapshot of a manager's counters."""

    resolutions: int
    served: int
    unserved: int
    served_by: Mapping[str, int]  # strategy -> times it served
    cache_hits: int
    cache_misses: int  # absent or expired
    cache_expired: int
    cache_evictions: int  # LRU evictions
    cache_entries: int
    custom_errors: int


_COUNTERS = (
    "resolutions",
    "served",
    "unserved",
    "cache_hits",
    "cache_misses",
    "cache_expired",
    "cache_evictions",
    "custom_errors",
)


class FallbackManager(Generic[T]):
    """Remembers good results and resolves failures into fallback values. Thread-safe."""

    def __init__(
        self,
        config: FallbackConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        classifier: ErrorClassifier = DEFAULT_CLASSIFIER,
        bus: EventBus | None = None,
    ) -> None:
        if config is None:
            config = FallbackConfig()
        elif not isinstance(config, FallbackConfig):
            raise config_error("config", config, "a FallbackConfig or None")
        if not callable(clock):
            raise config_error("clock", clock, "a callable returning seconds")
        if bus is not None and not isinstance(bus, EventBus):
            raise config_error("bus", bus, "an EventBus or None")
        self.config = config
        self.classifier = classifier
        self._clock = clock
        self._bus = bus if bus is not None else EventBus(parent=GLOBAL_BUS)
        self._lock = threading.Lock()
        self._cache: OrderedDict[Hashable, tuple[T, float]] = OrderedDict()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._served_by = dict.fromkeys(STRATEGIES, 0)

    # --- cache ----------------------------------------------------------------------------
    def remember(self, key: Hashable, value: T) -> None:
        """Keep ``value`` as the last good result for ``key`` (a no-op without "cache")."""
        try:
            hash(key)
        except TypeError:
            raise config_error("key", key, "a hashable key") from None
        if "cache" not in self.config.order:
            return
        now = self._clock()
        with self._lock:
            cache = self._cache
            cache[key] = (value, now)
            cache.move_to_end(key)
            while len(cache) > self.config.cache_max_entries:
                cache.popitem(last=False)
                self._counts["cache_evictions"] += 1

    def _cached(self, key: Hashable | None) -> object:
        if key is None:
            return MISSING
        ttl = self.config._ttl
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and ttl is not None and now - entry[1] >= ttl:
                del self._cache[key]
                self._counts["cache_expired"] += 1
                entry = None
            if entry is None:
                self._counts["cache_misses"] += 1
                return MISSING
            self._cache.move_to_end(key)
            self._counts["cache_hits"] += 1
            return entry[0]

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- resolving ------------------------------------------------------------------------
    def _walk(
        self, key: Hashable | None, error: BaseException, extra: Mapping[str, Any]
    ) -> Generator[FallbackContext, object, FallbackResult[T]]:
        """Try each strategy; yields a context whenever the shell must call ``custom``."""
        config = self.config
        if not config.enabled:
            return FallbackResult(value=None, strategy=None, served=False, tried=())
        info = self.classifier.classify(error)
        tried: list[str] = []
        for strategy in config.order:
            tried.append(strategy)
            if strategy == "cache":
                value = self._cached(key)
            elif strategy == "default":
                value = config.default_value
            elif config.custom is None:
                value = MISSING
            else:
                value = yield FallbackContext(
                    key=key, error=error, extra=MappingProxyType(dict(extra))
                )
                if value is None:
                    value = MISSING
            served = value is not MISSING
            self._bus.emit(
                FallbackInvoked(
                    strategy=strategy,
                    result="served" if served else "empty",
                    error_type=info.error_type,
                    error_code=str(info.code),
                )
            )
            if served:
                with self._lock:
                    self._counts["resolutions"] += 1
                    self._counts["served"] += 1
                    self._served_by[strategy] += 1
                return FallbackResult(
                    value=cast(T, value), strategy=strategy, served=True, tried=tuple(tried)
                )
        with self._lock:
            self._counts["resolutions"] += 1
            self._counts["unserved"] += 1
        return FallbackResult(value=None, strategy=None, served=False, tried=tuple(tried))

    def _custom_failed(self) -> object:
        with self._lock:
            self._counts["custom_errors"] += 1
        _log.warning("custom fallback function failed; treating it as empty", exc_info=True)
        return MISSING

    def resolve(
        self, key: Hashable | None, error: BaseException, **extra: Any
    ) -> FallbackResult[T]:
        """Resolve a failure (``error``) for ``key`` into a fallback value, if any."""
        walk = self._walk(key, error, extra)
        custom = cast(Callable[[FallbackContext], object], self.config.custom)
        try:
            context = next(walk)
            try:
                value = custom(context)
            except Exception:
                value = self._custom_failed()
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                warnings.warn(
                    "the custom fallback is async: use resolve_async(); treated as empty",
                    RuntimeWarning,
                    stacklevel=2,
                )
                value = MISSING
            walk.send(value)
        except StopIteration as stop:
            return cast(FallbackResult[T], stop.value)
        raise RuntimeError("fallback walk yielded twice")  # pragma: no cover - one custom step

    async def resolve_async(
        self, key: Hashable | None, error: BaseException, **extra: Any
    ) -> FallbackResult[T]:
        """:meth:`resolve` for async code: an async ``custom`` is awaited."""
        walk = self._walk(key, error, extra)
        custom = cast(Callable[[FallbackContext], object], self.config.custom)
        try:
            context = next(walk)
            try:
                value = custom(context)
                if inspect.isawaitable(value):
                    value = await cast(Awaitable[object], value)
            except Exception:
                value = self._custom_failed()
            walk.send(value)
        except StopIteration as stop:
            return cast(FallbackResult[T], stop.value)
        raise RuntimeError("fallback walk yielded twice")  # pragma: no cover - one custom step

    # --- statistics and listeners ---------------------------------------------------------
    def stats(self) -> FallbackStats:
        with self._lock:
            counts = dict(self._counts)
            return FallbackStats(
                served_by=MappingProxyType(dict(self._served_by)),
                cache_entries=len(self._cache),
                **counts,
            )

    def subscribe(self, listener: Listener) -> None:
        """Deliver this manager's events to ``listener`` (they also reach GLOBAL_BUS)."""
        self._bus.subscribe(listener)

    @property
    def bus(self) -> EventBus:
        return self._bus
