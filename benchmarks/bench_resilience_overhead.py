"""Happy-path overhead of our retry and circuit breaker next to tenacity and pybreaker.

Every wrapper guards the same no-op function and never fails, so what is measured is the cost a
successful call pays for being protected. All cases run in the same process, interleaved, with
``timeit`` (several repeats; the best and the median per-call time are reported). Overhead is the
per-call time minus the bare call's.

    python benchmarks/bench_resilience_overhead.py            # full run
    python benchmarks/bench_resilience_overhead.py --quick    # a few seconds

Requires the ``bench`` extra (tenacity, pybreaker).
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
from typing import Any

import pybreaker
import tenacity

from pixel_llm_otel.resilience import CircuitBreaker, CircuitBreakerConfig, RetryConfig, retry

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
    return {
        "bare": noop,
        "ours retry": retry(RETRY)(noop),
        "tenacity retry": tenacity_retry()(noop),
        "ours breaker": ours_breaker(noop),
        "pybreaker": theirs_breaker(noop),
        "ours retry+breaker": retry(RETRY)(ours_breaker_2(noop)),
        "tenacity+pybreaker": tenacity_retry()(theirs_breaker_2(noop)),
    }


def async_cases() -> dict[str, Callable[[], Awaitable[object]]]:
    ours_breaker = CircuitBreaker("bench-async", CircuitBreakerConfig())
    return {
        "bare": anoop,
        "ours retry": retry(RETRY)(anoop),
        "tenacity retry": tenacity_retry()(anoop),
        "ours breaker": ours_breaker(anoop),
        "ours retry+breaker": retry(RETRY)(ours_breaker(anoop)),
    }


def measure_sync(fn: Callable[[], object], number: int, repeat: int) -> list[float]:
    timer = timeit.Timer(fn)
    return [t / number for t in timer.repeat(repeat=repeat, number=number)]


def measure_async(fn: Callable[[], Awaitable[object]], number: int, repeat: int) -> list[float]:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(number):
            await fn()
        return time.perf_counter() - start

    return [asyncio.run(loop()) / number for _ in range(repeat)]


def run(
    cases: dict[str, Callable[[], object]],
    measure: Callable[[Callable[[], object], int, int], list[float]],
    number: int,
    repeat: int,
    rounds: int,
) -> dict[str, tuple[float, float]]:
    """Interleave the cases over ``rounds`` so drift on a shared machine hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        measure(fn, max(1, number // 10), 1)
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].extend(measure(fn, number, repeat))
    return {name: (min(s), statistics.median(s)) for name, s in samples.items()}


def report(
    title: str, results: dict[str, tuple[float, float]], pairs: list[tuple[str, str]]
) -> None:
    bare_median = results["bare"][1]
    print(f"\n{title}")
    print(f"{'case':<22}{'best ns':>10}{'median ns':>11}{'overhead ns':>13}")
    for name, (best, median) in results.items():
        overhead = (median - bare_median) * 1e9
        print(f"{name:<22}{best * 1e9:>10.0f}{median * 1e9:>11.0f}{overhead:>13.0f}")
    print("ratios of median overhead (ours / theirs; below 1.00 means ours is cheaper):")
    for ours, theirs in pairs:
        if ours in results and theirs in results:
            o = results[ours][1] - bare_median
            t = results[theirs][1] - bare_median
            print(f"  {ours:<20} / {theirs:<20} = {o / t:5.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    args = parser.parse_args(argv)
    number, repeat, rounds = (2_000, 3, 2) if args.quick else (20_000, 5, 3)
    print(
        f"python {sys.version.split()[0]}; tenacity {_version('tenacity')}; "
        f"pybreaker {_version('pybreaker')}; {number} calls x {repeat} repeats x {rounds} rounds"
    )
    sync_results = run(sync_cases(), measure_sync, number, repeat, rounds)
    report(
        "sync, per call",
        sync_results,
        [
            ("ours retry", "tenacity retry"),
            ("ours breaker", "pybreaker"),
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
    report(
        "async, per call (pybreaker has no asyncio support)",
        async_results,
        [
            ("ours retry", "tenacity retry"),
        ],
    )
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
