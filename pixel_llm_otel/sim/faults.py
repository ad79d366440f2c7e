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

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from ..errors import ValidationError
from ._latency import Latency, check_number

__all__ = [
    "STREAM_KINDS",
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
    # Streamed requests only (a non-streamed request gets a well-formed answer); "after N" is
    # ``after`` of the script step, else the spec's ``stream_fault_after``, in SSE events sent.
    STREAM_STALL = "stream_stall"  # silence for stream_stall_seconds after N events, then the rest
    STREAM_RESET = "stream_reset"  # the connection is dropped after N events
    STREAM_MALFORMED = "stream_malformed"  # an event that is not JSON after N events, then the rest
    STREAM_TRUNCATED = "stream_truncated"  # a clean end after N events, without data: [DONE]
    STREAM_EMPTY = "stream_empty"  # 200 text/event-stream with no event (llama.cpp on overflow)
    SLOW_FIRST_CHUNK = "slow_first_chunk"  # headers at once, first event after first_chunk_delay

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


#: The kinds that only change a streamed answer.
STREAM_KINDS = frozenset(
    {
        FaultKind.STREAM_STALL,
        FaultKind.STREAM_RESET,
        FaultKind.STREAM_MALFORMED,
        FaultKind.STREAM_TRUNCATED,
        FaultKind.STREAM_EMPTY,
        FaultKind.SLOW_FIRST_CHUNK,
    }
)


class OutageMode(str, Enum):
    """How the server is down during an outage window."""

    REFUSE = "refuse"  # the listening socket is closed: connection refused
    HTTP_503 = "503"  # every request gets 503 with Retry-After = seconds left

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class OutageSpec:
    """Down for ``duration`` seconds (on the simulator's clock) from when it is applied."""

    duration: float
    mode: OutageMode = OutageMode.REFUSE

    def __post_init__(self) -> None:
        check_number(self.duration, "outage.duration")
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
            duration=check_number(value["duration"], "outage.duration"),
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
    """The forced outcome of one request, optionally with its own latency (seconds).

    Stream kinds also take ``after`` (SSE events sent before the fault) and ``seconds`` (how long
    a stall or a slow first chunk lasts); ``None``: the spec's value.
    """

    kind: FaultKind
    latency: float | None = None
    after: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind.parse(self.kind, field_name="script.kind"))
        if self.latency is not None:
            object.__setattr__(self, "latency", check_number(self.latency, "script.latency"))
        if self.after is not None:
            object.__setattr__(self, "after", _count(self.after, "script.after"))
        if self.seconds is not None:
            object.__setattr__(self, "seconds", check_number(self.seconds, "script.seconds"))

    @classmethod
    def from_value(cls, value: object) -> ScriptStep:
        """From ``"503"``, ``FaultKind.HTTP_503`` or ``{"kind": "ok", "latency": 0.2}``
        (stream kinds: ``{"kind": "stream_reset", "after": 3}``)."""
        if isinstance(value, ScriptStep):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"kind", "latency", "after", "seconds"}
            if unknown or "kind" not in value:
                raise ValidationError(
                    field="script",
                    value=value,
                    expected='{"kind": ..., "latency": s, "after": events, "seconds": s}',
                )
            return cls(
                FaultKind.parse(value["kind"], field_name="script.kind"),
                value.get("latency"),
                value.get("after"),
                value.get("seconds"),
            )
        return cls(FaultKind.parse(value, field_name="script"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "latency": self.latency,
            "after": self.after,
            "seconds": self.seconds,
        }


def _count(value: object, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(field=field_name, value=value, expected="an integer >= 0")
    return value


_SPEC_KEYS = frozenset(
    {
        "name",
        "rates",
        "latency",
        "stream_chunk_delay",
        "retry_after",
        "hang_seconds",
        "outage",
        "stream_fault_after",
        "stream_stall_seconds",
        "first_chunk_delay",
        "stream_usage",
    }
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
        stream_fault_after: SSE events sent before a stream fault strikes (script steps may
            override it with ``after``).
        stream_stall_seconds: how long a ``stream_stall`` holds the stream silent.
        first_chunk_delay: how long a ``slow_first_chunk`` waits after the headers.
        stream_usage: honour ``stream_options.include_usage``; ``False`` ignores it, as the
            llama.cpp server does (no usage chunk is sent).
    """

    name: str = "custom"
    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    latency: Latency | None = None
    stream_chunk_delay: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 300.0
    outage: OutageSpec | None = None
    stream_fault_after: int = 2
    stream_stall_seconds: float = 30.0
    first_chunk_delay: float = 2.0
    stream_usage: bool = True

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
            number = check_number(rate, f"rates.{kind.value}")
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
        for name in (
            "stream_chunk_delay",
            "retry_after",
            "hang_seconds",
            "stream_stall_seconds",
            "first_chunk_delay",
        ):
            object.__setattr__(self, name, check_number(getattr(self, name), name))
        _count(self.stream_fault_after, "stream_fault_after")
        if not isinstance(self.stream_usage, bool):
            raise ValidationError(
                field="stream_usage", value=self.stream_usage, expected="true or false"
            )
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
            "stream_fault_after": self.stream_fault_after,
            "stream_stall_seconds": self.stream_stall_seconds,
            "first_chunk_delay": self.first_chunk_delay,
            "stream_usage": self.stream_usage,
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
