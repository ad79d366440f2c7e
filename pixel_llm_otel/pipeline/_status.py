"""What ``health()`` and ``get_error_metrics()`` return: frozen, keyword-only dataclasses.

Both keep the dict-style reading of the original API (``health["server_reachable"]``,
``metrics["retries"]["retries"]``) and give the plain, JSON-friendly dict with ``to_dict()``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..resilience.circuit_breaker import CircuitBreakerSnapshot
from ..resilience.fallback import FallbackStats
from ..resilience.retry import RetryStats

__all__ = ["PipelineHealth", "PipelineMetrics"]


class _DictView:
    """``obj[key]``, ``key in obj``, ``keys()`` and iteration over ``to_dict()``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def keys(self) -> list[str]:
        return list(self.to_dict())

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineHealth(_DictView):
    """The server's reachability and models, the breaker state and the cache size.

    Attributes:
        server_reachable: whether ``GET /models`` answered within ``health_timeout``.
        url / model: the configured base URL and model.
        models: the model ids the server offers (empty when unreachable).
        breaker_state: ``closed`` | ``open`` | ``half_open``.
        cache_size: entries in the fallback cache.
        error: what went wrong, when unreachable (never a secret).
    """

    server_reachable: bool
    url: str
    model: str
    models: tuple[str, ...] = ()
    breaker_state: str
    cache_size: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_reachable": self.server_reachable,
            "url": self.url,
            "model": self.model,
            "models": list(self.models),
            "breaker_state": self.breaker_state,
            "cache_size": self.cache_size,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineMetrics(_DictView):
    """One pipeline's error and resilience counters, with breaker, retry and cache state.

    Attributes:
        errors / retries / circuit_breakers / fallbacks: the counter groups of
            :meth:`~pixel_llm_otel.monitoring.ErrorMetrics.summary` (read-only mappings).
        circuit_breaker: the pipeline's breaker right now.
        retry_stats: the retry policy's counters.
        fallback_stats: the fallback manager's counters.
    """

    errors: Mapping[str, Any]
    retries: Mapping[str, Any]
    circuit_breakers: Mapping[str, Any]
    fallbacks: Mapping[str, Any]
    circuit_breaker: CircuitBreakerSnapshot
    retry_stats: RetryStats
    fallback_stats: FallbackStats

    @classmethod
    def build(
        cls,
        summary: Mapping[str, Any],
        breaker: CircuitBreakerSnapshot,
        retry: RetryStats,
        fallback: FallbackStats,
    ) -> PipelineMetrics:
        return cls(
            errors=MappingProxyType(dict(summary["errors"])),
            retries=MappingProxyType(dict(summary["retries"])),
            circuit_breakers=MappingProxyType(dict(summary["circuit_breakers"])),
            fallbacks=MappingProxyType(dict(summary["fallbacks"])),
            circuit_breaker=breaker,
            retry_stats=retry,
            fallback_stats=fallback,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly dict of the original ``get_error_metrics()`` (enums by value)."""
        return {
            "errors": _plain(self.errors),
            "retries": _plain(self.retries),
            "circuit_breakers": _plain(self.circuit_breakers),
            "fallbacks": _plain(self.fallbacks),
            "circuit_breaker": {
                "name": self.circuit_breaker.name,
                "state": self.circuit_breaker.state.value,
                "snapshot": _as_dict(self.circuit_breaker),
            },
            "retry_stats": _as_dict(self.retry_stats),
            "fallback_stats": _as_dict(self.fallback_stats),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _as_dict(value: object) -> dict[str, Any]:
    """A dataclass snapshot as a JSON-friendly dict (enums by value, mappings as dicts)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):  # type: ignore[arg-type]
        item = getattr(value, f.name)
        out[f.name] = item.value if isinstance(item, enum.Enum) else _plain(item)
    return out
