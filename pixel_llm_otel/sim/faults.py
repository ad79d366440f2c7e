"""The fault model: what can go wrong with a request, and how often.

A :class:`FaultSpec` is a frozen, validated description of a server's behaviour: per-kind
probabilities (``rates``), added latency, how long a hang lasts, the ``Retry-After`` a 429 sends,
the delay between SSE chunks, and an optional outage window that starts when the spec is applied.
A :class:`ScriptStep` forces the outcome of one request; a script is a queue of them consumed in
order before the rates are consulted.

Specs round-trip through JSON (:meth:`FaultSpec.from_dict` / :meth:`FaultSpec.to_dict`), which is
what ``POST /admin/scenario`` accepts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from ..errors import ValidationError

__all__ = [
    "FaultKind",
    "FaultSpec",
    "Latency",
    "OutageMode",
    "OutageSpec",
    "ScriptStep",
]


class FaultKind(str, Enum):
    """What the simulator does with one chat-completions request."""

    OK = "ok"  # a well-formed answer
    HTTP_500 = "500"  # internal server error, OpenAI error body
    HTTP_502 = "502"  # bad gateway
    HTTP_503 = "503"  # service unavailable (engine overloaded)
    HTTP_504 = "504"  # gateway timeout
    RATE_LIMIT = "429"  # too many requests, with a Retry-After header
    HANG = "hang"  # no response: the request is held open, then the connection is dropped
    RESET = "reset"  # headers and part of the body are sent, then the connection is closed
    MALFORMED_JSON = "malformed_json"  # 200 with a body that is not valid JSON
    EMPTY_CHOICES = "empty_choices"  # 200, well-formed, but ``choices`` is empty

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object, *, field_name: str = "kind") -> FaultKind:
        """A kind from its value (``"503"``, ``503``, ``"hang"``) or name (``"HTTP_503"``)."""
        if isinstance(value, FaultKind):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            text = value.strip()
            for kind in cls:
                if text == kind.value or text.upper() == kind.name:
                    return kind
        raise ValidationError(
            field=field_name, value=value, expected=f"one of {[k.value for k in cls]}"
        )


class OutageMode(str, Enum):
    """How the server is down during an outage window."""

    REFUSE = "refuse"  # the listening socket is closed: connection refused
    HTTP_503 = "503"  # every request gets 503 with Retry-After = seconds left

    def __str__(self) -> str:
        return self.value


_DISTRIBUTIONS = ("fixed", "uniform", "normal", "exponential")


def _number(value: object, field_name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field=field_name, value=value, expected="a number")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise ValidationError(
            field=field_name, value=value, expected=f"a finite number >= {minimum:g}"
        )
    return number


@dataclass(frozen=True, slots=True)
class Latency:
    """Added latency in seconds: fixed, or drawn from a distribution (never negative).

    ``fixed``: ``seconds``; ``uniform``: ``low``..``high``; ``normal``: ``mean``, ``stddev``
    (clipped at 0); ``exponential``: ``mean``.
    """

    distribution: str = "fixed"
    seconds: float = 0.0
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    stddev: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in _DISTRIBUTIONS:
            raise ValidationError(
                field="latency.distribution",
                value=self.distribution,
                expected=f"one of {list(_DISTRIBUTIONS)}",
            )
        for name in ("seconds", "low", "high", "mean", "stddev"):
            _number(getattr(self, name), f"latency.{name}")
        if self.high < self.low:
            raise ValidationError(
                field="latency.high", value=self.high, expected=f">= latency.low ({self.low:g})"
            )

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        return cls("fixed", seconds=seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        return cls("uniform", low=low, high=high)

    @classmethod
    def normal(cls, mean: float, stddev: float) -> Latency:
        return cls("normal", mean=mean, stddev=stddev)

    @classmethod
    def exponential(cls, mean: float) -> Latency:
        return cls("exponential", mean=mean)

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.distribution == "fixed":
            return self.seconds
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high)
        if self.distribution == "normal":
            return max(0.0, rng.gauss(self.mean, self.stddev))
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        keys = {
            "fixed": ("seconds",),
            "uniform": ("low", "high"),
            "normal": ("mean", "stddev"),
            "exponential": ("mean",),
        }[self.distribution]
        return {"distribution": self.distribution, **{k: getattr(self, k) for k in keys}}

    @classmethod
    def from_value(cls, value: object, field_name: str = "latency") -> Latency:
        """From a number (fixed seconds) or a mapping like ``{"distribution": "uniform", ...}``."""
        if isinstance(value, Latency):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls.fixed(_number(value, field_name))
        if not isinstance(value, Mapping):
            raise ValidationError(
                field=field_name, value=value, expected="seconds or a latency mapping"
            )
        unknown = set(value) - {"distribution", "seconds", "low", "high", "mean", "stddev"}
        if unknown:
            raise ValidationError(
                field=f"{field_name}.{sorted(unknown)[0]}",
                value=value,
                expected="distribution, seconds, low, high, mean, stddev",
            )
        kwargs = {
            k: _number(v, f"{field_name}.{k}") for k, v in value.items() if k != "distribution"
        }
        return cls(str(value.get("distribution", "fixed")), **kwargs)


@dataclass(frozen=True, slots=True)
class OutageSpec:
    """Down for ``duration`` seconds (on the simulator's clock) from when it is applied."""

    duration: float
    mode: OutageMode = OutageMode.REFUSE

    def __post_init__(self) -> None:
        _number(self.duration, "outage.duration")
        object.__setattr__(self, "mode", _outage_mode(self.mode))

    def to_dict(self) -> dict[str, Any]:
        return {"duration": self.duration, "mode": self.mode.value}

    @classmethod
    def from_value(cls, value: object) -> OutageSpec:
        if isinstance(value, OutageSpec):
            return value
        if not isinstance(value, Mapping) or "duration" not in value:
            raise ValidationError(
                field="outage", value=value, expected='{"duration": seconds, "mode": ...}'
            )
        return cls(
            duration=_number(value["duration"], "outage.duration"),
            mode=_outage_mode(value.get("mode", "refuse")),
        )


def _outage_mode(value: object) -> OutageMode:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return OutageMode(value)
    except ValueError:
        raise ValidationError(
            field="outage.mode", value=value, expected=f"one of {[m.value for m in OutageMode]}"
        ) from None


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """The forced outcome of one request, optionally with its own latency (seconds)."""

    kind: FaultKind
    latency: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind.parse(self.kind, field_name="script.kind"))
        if self.latency is not None:
            object.__setattr__(self, "latency", _number(self.latency, "script.latency"))

    @classmethod
    def from_value(cls, value: object) -> ScriptStep:
        """From ``"503"``, ``FaultKind.HTTP_503`` or ``{"kind": "ok", "latency": 0.2}``."""
        if isinstance(value, ScriptStep):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"kind", "latency"}
            if unknown or "kind" not in value:
                raise ValidationError(
                    field="script", value=value, expected='{"kind": ..., "latency": seconds}'
                )
            return cls(
                FaultKind.parse(value["kind"], field_name="script.kind"), value.get("latency")
            )
        return cls(FaultKind.parse(value, field_name="script"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "latency": self.latency}


_SPEC_KEYS = frozenset(
    {"name", "rates", "latency", "stream_chunk_delay", "retry_after", "hang_seconds", "outage"}
)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A complete description of how the simulator misbehaves.

    Attributes:
        name: a label reported in stats (the scenario's name for named scenarios).
        rates: probability per fault kind, each in [0, 1], summing to at most 1; the rest is "ok".
        latency: added before every chat-completions answer (``None``: none).
        stream_chunk_delay: seconds between SSE chunks (slow streaming).
        retry_after: seconds sent in the ``Retry-After`` header of a 429.
        hang_seconds: how long a "hang" holds the request before dropping the connection.
        outage: a window that starts when the spec is applied (``None``: none).
    """

    name: str = "custom"
    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    latency: Latency | None = None
    stream_chunk_delay: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 300.0
    outage: OutageSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError(field="name", value=self.name, expected="a non-empty string")
        if not isinstance(self.rates, Mapping):
            raise ValidationError(field="rates", value=self.rates, expected="a mapping")
        rates: dict[FaultKind, float] = {}
        for key, rate in self.rates.items():
            kind = FaultKind.parse(key, field_name="rates")
            if kind is FaultKind.OK:
                raise ValidationError(
                    field="rates", value=key, expected="a fault kind (ok is the remainder)"
                )
            number = _number(rate, f"rates.{kind.value}")
            if number > 1:
                raise ValidationError(field=f"rates.{kind.value}", value=rate, expected="<= 1")
            if number > 0:
                rates[kind] = number
        if sum(rates.values()) > 1 + 1e-9:
            raise ValidationError(
                field="rates", value=dict(self.rates), expected="probabilities summing to <= 1"
            )
        ordered = {k: rates[k] for k in FaultKind if k in rates}
        object.__setattr__(self, "rates", MappingProxyType(ordered))
        if self.latency is not None:
            object.__setattr__(self, "latency", Latency.from_value(self.latency))
        for name in ("stream_chunk_delay", "retry_after", "hang_seconds"):
            object.__setattr__(self, name, _number(getattr(self, name), name))
        if self.outage is not None:
            object.__setattr__(self, "outage", OutageSpec.from_value(self.outage))

    def choose(self, rng: random.Random) -> FaultKind:
        """Draw one outcome from the rates (exactly one random draw per call)."""
        draw = rng.random()
        cumulative = 0.0
        for kind, rate in self.rates.items():
            cumulative += rate
            if draw < cumulative:
                return kind
        return FaultKind.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rates": {k.value: v for k, v in self.rates.items()},
            "latency": self.latency.to_dict() if self.latency else None,
            "stream_chunk_delay": self.stream_chunk_delay,
            "retry_after": self.retry_after,
            "hang_seconds": self.hang_seconds,
            "outage": self.outage.to_dict() if self.outage else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        """Build a spec from JSON-like data; unknown keys are rejected."""
        if not isinstance(data, Mapping):
            raise ValidationError(field="spec", value=data, expected="a JSON object")
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise ValidationError(
                field=sorted(unknown)[0], value=data, expected=f"keys among {sorted(_SPEC_KEYS)}"
            )
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        if "latency" in kwargs:
            kwargs["latency"] = Latency.from_value(kwargs["latency"])
        if "outage" in kwargs:
            kwargs["outage"] = OutageSpec.from_value(kwargs["outage"])
        return cls(**kwargs)
