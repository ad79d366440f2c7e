"""Named scenarios: ready-made :class:`~pixel_llm_otel.sim.faults.FaultSpec` values.

=============  ================================================================================
healthy        every request answered at once
flaky          20% 5xx (12% 503, 8% 500), 5% hangs (client timeouts), 5% 429 with Retry-After 1
outage         down (connection refused) for 30 s from when it is applied, then healthy
slow           ~1.5 s latency (normal, sd 0.5) and 50 ms between SSE chunks
rate_limited   half the requests get 429 with Retry-After 2
chaos          a little of everything, with exponential latency
=============  ================================================================================
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from .faults import FaultKind, FaultSpec, Latency, OutageMode, OutageSpec

__all__ = ["SCENARIOS", "scenario"]

SCENARIOS: dict[str, FaultSpec] = {
    "healthy": FaultSpec(name="healthy"),
    "flaky": FaultSpec(
        name="flaky",
        rates={
            FaultKind.HTTP_503: 0.12,
            FaultKind.HTTP_500: 0.08,
            FaultKind.HANG: 0.05,
            FaultKind.RATE_LIMIT: 0.05,
        },
        retry_after=1.0,
        hang_seconds=30.0,
    ),
    "outage": FaultSpec(name="outage", outage=OutageSpec(30.0, OutageMode.REFUSE)),
    "slow": FaultSpec(name="slow", latency=Latency.normal(1.5, 0.5), stream_chunk_delay=0.05),
    "rate_limited": FaultSpec(
        name="rate_limited", rates={FaultKind.RATE_LIMIT: 0.5}, retry_after=2.0
    ),
    "chaos": FaultSpec(
        name="chaos",
        rates={
            FaultKind.HTTP_500: 0.05,
            FaultKind.HTTP_502: 0.05,
            FaultKind.HTTP_503: 0.05,
            FaultKind.HTTP_504: 0.05,
            FaultKind.RATE_LIMIT: 0.05,
            FaultKind.HANG: 0.03,
            FaultKind.RESET: 0.05,
            FaultKind.MALFORMED_JSON: 0.03,
            FaultKind.EMPTY_CHOICES: 0.03,
        },
        latency=Latency.exponential(0.2),
        stream_chunk_delay=0.02,
        retry_after=1.0,
        hang_seconds=30.0,
    ),
}


def scenario(name: str, **overrides: Any) -> FaultSpec:
    """The named scenario, with optional field overrides (``scenario("outage", outage=...)``)."""
    try:
        spec = SCENARIOS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            field="scenario", value=name, expected=f"one of {sorted(SCENARIOS)}"
        ) from None
    if not overrides:
        return spec
    data = spec.to_dict()
    data.update(overrides)
    try:
        return FaultSpec.from_dict(data)
    except TypeError as exc:  # pragma: no cover - from_dict rejects unknown keys first
        raise ValidationError(field="overrides", value=overrides, expected=str(exc)) from exc


def resolve(value: str | FaultSpec) -> FaultSpec:
    """A spec from a scenario name or a spec."""
    if isinstance(value, FaultSpec):
        return value
    return scenario(value)
