"""The fault model: validation naming the field, JSON round-trips, scenarios, seeded rates."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.sim import (
    SCENARIOS,
    FaultKind,
    FaultSpec,
    Latency,
    ManualClock,
    OutageMode,
    OutageSpec,
    SimulatorServer,
    scenario,
)
from pixel_llm_otel.sim.state import SimulatorState


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rates": {"503": 1.5}}, "rates.503"),
        ({"rates": {"503": -0.1}}, "rates.503"),
        ({"rates": {"503": 0.6, "500": 0.6}}, "rates"),
        ({"rates": {"418": 0.1}}, "rates"),
        ({"rates": {"ok": 0.1}}, "rates"),
        ({"retry_after": -1}, "retry_after"),
        ({"hang_seconds": float("nan")}, "hang_seconds"),
        ({"stream_chunk_delay": "fast"}, "stream_chunk_delay"),
        ({"name": ""}, "name"),
        ({"latency": {"distribution": "pareto"}}, "latency.distribution"),
        ({"latency": {"distribution": "uniform", "low": 2, "high": 1}}, "latency.high"),
        ({"latency": {"seconds": 1, "jitter": 2}}, "latency.jitter"),
        ({"outage": {"duration": -5}}, "outage.duration"),
        ({"outage": {"duration": 5, "mode": "explode"}}, "outage.mode"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "rate-above-1",
        "rate-negative",
        "rates-sum",
        "unknown-kind",
        "ok-rate",
        "retry-after",
        "hang-nan",
        "chunk-delay-type",
        "empty-name",
        "distribution",
        "uniform-bounds",
        "latency-key",
        "outage-duration",
        "outage-mode",
        "unknown-key",
    ],
)
def test_bad_spec_raises_validation_error_naming_field(kwargs: dict[str, Any], field: str) -> None:
    """Every bad spec field raises ValidationError whose field names it."""
    with pytest.raises(ValidationError) as info:
        FaultSpec.from_dict(kwargs)
    assert info.value.field == field
    assert info.value.expected


def test_spec_round_trips_through_json() -> None:
    """to_dict -> from_dict gives an equal spec for every named scenario and a custom one."""
    custom = FaultSpec(
        name="mine",
        rates={FaultKind.RESET: 0.1, FaultKind.RATE_LIMIT: 0.2},
        latency=Latency.normal(0.5, 0.1),
        outage=OutageSpec(3, OutageMode.HTTP_503),
    )
    for spec in [*SCENARIOS.values(), custom]:
        assert FaultSpec.from_dict(spec.to_dict()) == spec
    assert custom.outage is not None
    assert custom.outage.mode is OutageMode.HTTP_503
    assert list(custom.rates) == [FaultKind.RATE_LIMIT, FaultKind.RESET]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("503", FaultKind.HTTP_503),
        (503, FaultKind.HTTP_503),
        ("HANG", FaultKind.HANG),
        ("hang", FaultKind.HANG),
        (FaultKind.OK, FaultKind.OK),
        (" reset ", FaultKind.RESET),
    ],
    ids=["str-status", "int-status", "name", "value", "enum", "spaces"],
)
def test_fault_kind_parse(value: object, kind: FaultKind) -> None:
    """FaultKind.parse accepts values, statuses as ints, and enum names."""
    assert FaultKind.parse(value) is kind


def test_scenarios_are_named_and_overridable() -> None:
    """Every scenario's name is its key; overrides replace fields; unknown names are refused."""
    assert set(SCENARIOS) == {"healthy", "flaky", "outage", "slow", "rate_limited", "chaos"}
    assert all(spec.name == name for name, spec in SCENARIOS.items())
    flaky = SCENARIOS["flaky"].rates
    assert math.isclose(flaky[FaultKind.HTTP_503] + flaky[FaultKind.HTTP_500], 0.20)
    assert flaky[FaultKind.HANG] == 0.05
    assert flaky[FaultKind.RATE_LIMIT] == 0.05
    short = scenario("outage", outage={"duration": 2, "mode": "503"})
    assert short.outage is not None
    assert short.outage.duration == 2
    with pytest.raises(ValidationError, match="scenario"):
        scenario("sunny")


@pytest.mark.parametrize(
    ("latency", "low", "high", "mean"),
    [
        (Latency.fixed(0.2), 0.2, 0.2, 0.2),
        (Latency.uniform(0.1, 0.3), 0.1, 0.3, 0.2),
        (Latency.normal(0.5, 0.1), 0.0, math.inf, 0.5),
        (Latency.exponential(0.2), 0.0, math.inf, 0.2),
    ],
    ids=["fixed", "uniform", "normal", "exponential"],
)
def test_latency_samples_follow_distribution(
    latency: Latency, low: float, high: float, mean: float
) -> None:
    """Samples stay in bounds and their mean is near the distribution's mean (seeded)."""
    rng = random.Random(7)
    samples = [latency.sample(rng) for _ in range(4000)]
    assert all(low <= s <= high for s in samples)
    assert sum(samples) / len(samples) == pytest.approx(mean, rel=0.05)


def test_normal_latency_is_clipped_at_zero() -> None:
    """A normal distribution with a large spread never yields a negative delay."""
    rng = random.Random(1)
    samples = [Latency.normal(0.0, 1.0).sample(rng) for _ in range(500)]
    assert min(samples) == 0.0


def _binomial_bound(n: int, p: float) -> float:
    return 5 * math.sqrt(n * p * (1 - p))  # five standard deviations


def test_rates_respected_statistically() -> None:
    """Over 5000 seeded draws each kind's frequency is within 5 sigma of its rate."""
    spec = scenario("chaos")
    state = SimulatorState(spec, seed=42, clock=ManualClock())
    n = 5000
    counts = Counter(state.decide().kind for _ in range(n))
    for kind, rate in spec.rates.items():
        assert abs(counts[kind] - n * rate) <= _binomial_bound(n, rate), kind
    ok_rate = 1 - sum(spec.rates.values())
    assert abs(counts[FaultKind.OK] - n * ok_rate) <= _binomial_bound(n, ok_rate)


def test_same_seed_same_sequence() -> None:
    """Two states with one seed draw the same outcomes; reset replays them."""
    a = SimulatorState(scenario("flaky"), seed=5, clock=ManualClock())
    b = SimulatorState(scenario("flaky"), seed=5, clock=ManualClock())
    first = [a.decide().kind for _ in range(200)]
    assert first == [b.decide().kind for _ in range(200)]
    a.reset()
    assert first == [a.decide().kind for _ in range(200)]
    assert len(set(first)) > 1


async def test_rates_over_http(session: aiohttp.ClientSession) -> None:
    """Over 300 real requests at 50% 503 the server's 503 count is within 5 sigma of 150."""
    spec = FaultSpec.from_dict({"rates": {"503": 0.5}})
    async with SimulatorServer(scenario=spec, seed=11) as sim:
        statuses: Counter[int] = Counter()
        for _ in range(300):
            async with session.post(sim.base_url + CHAT, json=chat_body()) as resp:
                statuses[resp.status] += 1
        stats = sim.stats()
    assert abs(statuses[503] - 150) <= _binomial_bound(300, 0.5)
    assert stats.count("/v1/chat/completions", "503") == statuses[503]
    assert stats.count("/v1/chat/completions", "ok") == statuses[200]
    assert stats.total == 300
