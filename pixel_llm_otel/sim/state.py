"""The simulator's mutable state: current spec, script queue, outage window, RNG and counters.

No aiohttp here: the routes ask :meth:`SimulatorState.decide` what to do and report the outcome
with :meth:`SimulatorState.record`. All methods run on the server's event loop (the thread-backed
variant marshals calls there), so no lock is needed.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import ValidationError
from .faults import FaultKind, FaultSpec, OutageMode, OutageSpec, ScriptStep

__all__ = ["Decision", "RequestRecord", "SimulatorState", "SimulatorStats"]

#: Outcome names besides the fault kinds' values.
OUTCOME_OUTAGE = "outage"
OUTCOME_INVALID = "invalid_request"
OUTCOME_UNAUTHORIZED = "unauthorized"
OUTCOME_NOT_FOUND = "not_found"

#: How many request records are kept (oldest dropped first).
MAX_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one chat-completions request."""

    kind: FaultKind
    latency: float  # seconds to wait before answering
    scripted: bool
    after: int | None = None  # stream kinds: events sent before the fault (None: the spec's)
    seconds: float | None = None  # stream kinds: stall / first-chunk delay (None: the spec's)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request that reached the server (never headers other than ``traceparent``)."""

    seq: int
    method: str
    path: str
    outcome: str
    traceparent: str | None
    model: str | None
    stream: bool
    at: float  # the simulator's clock when it arrived

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "outcome": self.outcome,
            "traceparent": self.traceparent,
            "model": self.model,
            "stream": self.stream,
            "at": self.at,
        }


def _frozen(counter: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counter.items())))


@dataclass(frozen=True, slots=True)
class SimulatorStats:
    """A snapshot of what reached the server since the last reset.

    ``by_endpoint`` is keyed by path (``/v1/chat/completions``, ``/v1/models``, or ``other``);
    ``by_outcome`` by outcome: ``ok``, a fault kind's value (``503``, ``hang``, ...),
    ``outage``, ``invalid_request``, ``unauthorized`` or ``not_found``.
    """

    total: int
    by_endpoint: Mapping[str, int]
    by_outcome: Mapping[str, int]
    by_endpoint_outcome: Mapping[str, Mapping[str, int]]
    traceparents: tuple[str | None, ...]
    scenario: str
    script_remaining: int
    outage_active: bool
    outage_remaining: float
    listening: bool = True

    def count(self, endpoint: str | None = None, outcome: str | FaultKind | None = None) -> int:
        """Requests to ``endpoint`` (any if ``None``) with ``outcome`` (any if ``None``)."""
        key = outcome.value if isinstance(outcome, FaultKind) else outcome
        if endpoint is None:
            return self.total if key is None else self.by_outcome.get(key, 0)
        if key is None:
            return self.by_endpoint.get(endpoint, 0)
        return self.by_endpoint_outcome.get(endpoint, {}).get(key, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_endpoint": dict(self.by_endpoint),
            "by_outcome": dict(self.by_outcome),
            "by_endpoint_outcome": {k: dict(v) for k, v in self.by_endpoint_outcome.items()},
            "traceparents": list(self.traceparents),
            "scenario": self.scenario,
            "script_remaining": self.script_remaining,
            "outage_active": self.outage_active,
            "outage_remaining": self.outage_remaining,
            "listening": self.listening,
        }


class SimulatorState:
    """Spec, script, outage window, seeded RNG and counters of one simulator."""

    def __init__(
        self, spec: FaultSpec, *, seed: int | None = None, clock: Callable[[], float]
    ) -> None:
        self._initial_spec = spec
        self._seed = seed
        self._clock = clock
        self._rng = random.Random(seed)
        self._spec = spec
        self._script: deque[ScriptStep] = deque()
        self._outage: OutageSpec | None = None
        self._outage_until = 0.0
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._seq = 0
        self._by_endpoint: Counter[str] = Counter()
        self._by_outcome: Counter[str] = Counter()
        self._by_endpoint_outcome: dict[str, Counter[str]] = {}
        self._activate_outage(spec.outage)

    # --- configuration ---------------------------------------------------------------------
    @property
    def spec(self) -> FaultSpec:
        return self._spec

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def set_spec(self, spec: FaultSpec, *, seed: int | None = None) -> None:
        """Switch behaviour now; starts the spec's outage window if it has one."""
        if not isinstance(spec, FaultSpec):
            raise ValidationError(field="scenario", value=spec, expected="a FaultSpec")
        self._spec = spec
        if seed is not None:
            self._seed = seed
            self._rng.seed(seed)
        self._activate_outage(spec.outage)

    def set_script(self, steps: Iterable[object], *, append: bool = False) -> int:
        """Replace (or extend) the per-request script; returns how many steps are queued."""
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
            raise ValidationError(field="script", value=steps, expected="a list of steps")
        parsed = [ScriptStep.from_value(step) for step in steps]
        if not append:
            self._script.clear()
        self._script.extend(parsed)
        return len(self._script)

    def start_outage(self, duration: float, mode: OutageMode | str = OutageMode.REFUSE) -> None:
        self._activate_outage(OutageSpec.from_value({"duration": duration, "mode": mode}))

    def end_outage(self) -> None:
        self._outage = None
        self._outage_until = 0.0

    def _activate_outage(self, outage: OutageSpec | None) -> None:
        if outage is None or outage.duration <= 0:
            self.end_outage()
            return
        self._outage = outage
        self._outage_until = self._clock() + outage.duration

    def reset(self) -> None:
        """Back to the starting scenario and seed, with no script, no outage and zero counters."""
        self._spec = self._initial_spec
        self._rng.seed(self._seed)
        self._script.clear()
        self.reset_stats()
        self._activate_outage(self._spec.outage)

    def reset_stats(self) -> None:
        self._records.clear()
        self._seq = 0
        self._by_endpoint.clear()
        self._by_outcome.clear()
        self._by_endpoint_outcome.clear()

    # --- per request -----------------------------------------------------------------------
    def outage_mode(self) -> OutageMode | None:
        """The current outage's mode, or ``None`` when up (ends the window once it has passed)."""
        if self._outage is None:
            return None
        if self._clock() >= self._outage_until:
            self.end_outage()
            return None
        return self._outage.mode

    def outage_remaining(self) -> float:
        return max(0.0, self._outage_until - self._clock()) if self.outage_mode() else 0.0

    def decide(self) -> Decision:
        """The outcome of the next chat-completions request: script first, then the rates."""
        spec = self._spec
        if self._script:
            step = self._script.popleft()
            latency = step.latency if step.latency is not None else self._latency(spec)
            return Decision(step.kind, latency, True, step.after, step.seconds)
        return Decision(spec.choose(self._rng), self._latency(spec), scripted=False)

    def _latency(self, spec: FaultSpec) -> float:
        return spec.latency.sample(self._rng) if spec.latency is not None else 0.0

    def record(
        self,
        *,
        method: str,
        path: str,
        endpoint: str,
        outcome: str,
        traceparent: str | None,
        model: str | None = None,
        stream: bool = False,
    ) -> RequestRecord:
        self._seq += 1
        rec = RequestRecord(
            self._seq, method, path, outcome, traceparent, model, stream, self._clock()
        )
        self._records.append(rec)
        self._by_endpoint[endpoint] += 1
        self._by_outcome[outcome] += 1
        self._by_endpoint_outcome.setdefault(endpoint, Counter())[outcome] += 1
        return rec

    # --- reading ---------------------------------------------------------------------------
    def requests(self) -> tuple[RequestRecord, ...]:
        return tuple(self._records)

    def stats(self, *, listening: bool = True) -> SimulatorStats:
        return SimulatorStats(
            total=sum(self._by_endpoint.values()),
            by_endpoint=_frozen(self._by_endpoint),
            by_outcome=_frozen(self._by_outcome),
            by_endpoint_outcome=MappingProxyType(
                {k: _frozen(v) for k, v in sorted(self._by_endpoint_outcome.items())}
            ),
            traceparents=tuple(r.traceparent for r in self._records),
            scenario=self._spec.name,
            script_remaining=len(self._script),
            outage_active=self.outage_mode() is not None,
            outage_remaining=self.outage_remaining(),
            listening=listening,
        )
