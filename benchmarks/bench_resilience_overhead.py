"""Happy-path overhead of our retry and circuit breaker next to tenacity, pybreaker, circuitbreaker.

Every wrapper guards the same no-op function and never fails, so what is measured is the cost a
successful call pays for being protected. All cases run in the same process, interleaved, with
``timeit`` (several repeats; the best and the median per-call time are reported). Overhead is the
per-call time minus the bare call's.

    python benchmarks/bench_resilience_overhead.py            # full run
    python benchmarks/bench_resilience_overhead.py --quick    # a few seconds

Goal (issue 10): our breaker's median overhead is at most the ``circuitbreaker`` package's, sync
and async; the script exits 1 when it is not. ``circuitbreaker`` is the cheapest peer (no lock, no
rate window, no half-open probe limit, no events), so this is a floor, not a like-for-like match.

Requires the ``bench`` extra (tenacity, pybreaker, circuitbreaker).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import circuitbreaker
import pybreaker
import tenacity

from pixel_llm_otel.resilience import CircuitBreaker, CircuitBreakerConfig, RetryConfig, retry

BREAKER_GOAL = 1.0  # ours / circuitbreaker, median overhead per call, at most
RETRY = RetryConfig(max_attempts=3, initial_delay=0.5, max_delay=10.0)
# tenacity >= 9.1 calls the first delay "multiplier" (and deprecates "initial").
_FIRST = (
    "multiplier"
    if "multiplier" in inspect.signature(tenacity.wait_exponential_jitter).parameters
    else "initial"
)


def tenacity_retry() -> Any:
    """tenacity's decorator configured like ours: 3 attempts, 0.5 s .. 10 s jittered backoff."""
    wait = tenacity.wait_exponential_jitter(**{_FIRST: 0.5}, max=10.0)
    return tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=wait, reraise=True)


def noop() -> int:
    return 1


async def anoop() -> int:
    return 1


def sync_cases() -> dict[str, Callable[[], object]]:
    ours_breaker = CircuitBreaker("bench", CircuitBreakerConfig())
    ours_breaker_2 = CircuitBreaker("bench-both", CircuitBreakerConfig())
    theirs_breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    theirs_breaker_2 = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    light = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=30, name="bench")
    return {
        "bare": noop,
        "ours retry": retry(RETRY)(noop),
        "tenacity retry": tenacity_retry()(noop),
        "ours breaker": ours_breaker(noop),
        "pybreaker": theirs_breaker(noop),
        "circuitbreaker": light(noop),
        "ours retry+breaker": retry(RETRY)(ours_breaker_2(noop)),
        "tenacity+pybreaker": tenacity_retry()(theirs_breaker_2(noop)),
    }


def async_cases() -> dict[str, Callable[[], Awaitable[object]]]:
    ours_breaker = CircuitBreaker("bench-async", CircuitBreakerConfig())
    light = circuitbreaker.CircuitBreaker(
        failure_threshold=5, recovery_timeout=30, name="bench-async"
    )
    return {
        "bare": anoop,
        "ours retry": retry(RETRY)(anoop),
        "tenacity retry": tenacity_retry()(anoop),
        "ours breaker": ours_breaker(anoop),
        "circuitbreaker": light(anoop),
        "ours retry+breaker": retry(RETRY)(ours_breaker(anoop)),
    }


def measure_sync(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Thread CPU seconds per call: the best of ``repeat`` runs of ``number`` calls.

    CPU time of this thread, not wall time: on a shared machine another process taking the core
    does not count against the case that happened to be running.
    """
    timer = timeit.Timer(fn, timer=time.thread_time)
    return min(timer.repeat(repeat=repeat, number=number)) / number


def measure_async(fn: Callable[[], Awaitable[object]], number: int, repeat: int) -> float:
    """As :func:`measure_sync`, awaiting ``fn`` in one event loop."""

    async def loop() -> float:
        start = time.thread_time()
        for _ in range(number):
            await fn()
        return time.thread_time() - start

    async def best() -> float:
        return min([await loop() for _ in range(repeat)])

    return asyncio.run(best()) / number


@dataclass
class Results:
    """Per-case CPU seconds per call, one sample per round (the cases interleaved)."""

    samples: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def overheads(self, name: str) -> list[float]:
        """Per-round overhead: the case minus the bare call measured in the same round."""
        return [x - b for x, b in zip(self.samples[name], self.samples["bare"], strict=True)]

    def ratios(self, ours: str, theirs: str) -> list[float]:
        """Per-round ratios of overheads (same round, so the same machine state)."""
        pairs = zip(self.overheads(ours), self.overheads(theirs), strict=True)
        return [o / t for o, t in pairs]


def run(
    cases: dict[str, Callable[[], object]],
    measure: Callable[[Callable[[], object], int, int], float],
    number: int,
    repeat: int,
    rounds: int,
) -> Results:
    """Interleave the cases over ``rounds`` (order rotated each round) so drift hits them alike."""
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for fn in cases.values():  # warm-up
        measure(fn, max(1, number // 10), 1)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measure(cases[name], number, repeat))
    return Results(samples)


def report(
    title: str, results: Results, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], float]:
    print(f"\n{title}: thread CPU per call, median over rounds (min..max)")
    print(f"{'case':<22}{'median ns':>11}{'range ns':>16}{'overhead ns':>13}")
    for name, values in results.samples.items():
        spread = f"{min(values) * 1e9:.0f}..{max(values) * 1e9:.0f}"
        overhead = statistics.median(results.overheads(name)) * 1e9
        print(f"{name:<22}{results.median(name) * 1e9:>11.0f}{spread:>16}{overhead:>13.0f}")
    print("per-round ratios of overhead (ours / theirs; below 1.00 means ours is cheaper):")
    ratios: dict[tuple[str, str], float] = {}
    for ours, theirs in pairs:
        if ours in results.samples and theirs in results.samples:
            per_round = results.ratios(ours, theirs)
            ratios[ours, theirs] = statistics.median(per_round)
            print(f"  {ours:<20} / {theirs:<20} = {ratios[ours, theirs]:5.2f} "
                  f"({min(per_round):.2f}..{max(per_round):.2f})")  # fmt: skip
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    args = parser.parse_args(argv)
    number, repeat, rounds = (2_000, 3, 5) if args.quick else (5_000, 3, 21)
    print(
        f"python {sys.version.split()[0]}; tenacity {_version('tenacity')}; "
        f"pybreaker {_version('pybreaker')}; circuitbreaker {_version('circuitbreaker')}; "
        f"{number} calls x best of {repeat} x {rounds} interleaved rounds"
    )
    sync_results = run(sync_cases(), measure_sync, number, repeat, rounds)
    sync_ratios = report(
        "sync, per call",
        sync_results,
        [
            ("ours retry", "tenacity retry"),
            ("ours breaker", "pybreaker"),
            ("ours breaker", "circuitbreaker"),
            ("ours retry+breaker", "tenacity+pybreaker"),
        ],
    )
    async_results = run(
        async_cases(),
        measure_async,  # type: ignore[arg-type]
        number,
        repeat,
        rounds,
    )
    async_ratios = report(
        "async, per call (pybreaker has no asyncio support)",
        async_results,
        [
            ("ours retry", "tenacity retry"),
            ("ours breaker", "circuitbreaker"),
        ],
    )
    goal = BREAKER_GOAL
    missed = [
        kind
        for kind, ratios in (("sync", sync_ratios), ("async", async_ratios))
        if ratios.get(("ours breaker", "circuitbreaker"), 0.0) > goal
    ]
    print(f"\ngoal: breaker overhead <= {goal:.2f}x circuitbreaker's, sync and async: "
          + ("MISS (" + ", ".join(missed) + ")" if missed else "PASS"))  # fmt: skip
    return 1 if missed else 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
