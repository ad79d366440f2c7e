"""Issue 10's goals in one run: our telemetry against the SDK floor and the official GenAI
instrumentation, and the pipeline against plain aiohttp.

Each telemetry set-up runs in its own worker process (``_peer_calls.SETUPS``); every case below
is one (set-up, call kind) pair. A round runs every case of an operating point once, in an order
rotated each round, so drift on this shared machine hits them alike; each figure is the median
over rounds with the min..max, and each ratio is computed per round (both sides measured in the
same round) before taking its median. Client CPU per call is the worker's process CPU time (event
loop and the SDK's export thread, export flushed after each batch): steadier than calls/s here.

Operating points (the simulator, ``healthy``, in its own process):

    c=1, c=16            zero server latency: telemetry against a ~1 ms call, the worst case
    20 ms, c=16          a fast local LLM: throughput ratios (instrumented / uninstrumented)
    wire c=1/16/64       uninstrumented pipeline vs plain aiohttp posting the same request

The wire baseline ("plain aiohttp, JSON per call") builds the request's payload dict and has
aiohttp serialise it on every call (``session.post(url, json=payload)``), as any aiohttp caller
posting a chat request must and as our client does. Until 2026-12-01 the baseline posted a body
serialised once at start-up; that variant is still measured and printed ("plain aiohttp, body
encoded once") so the two floors can be compared, but goal 3 is judged against the per-call one.
The wire cases run in their own worker processes, not the one that ran the telemetry cases,
and their rounds are spread over several of them (``--wire-processes``, default 3, hash seeds
1..N; every ratio is still taken within one round of one process): on this machine one process's
memory layout, or what ran in it before, moves these ~200 us calls by ~10% either way, which is
as much as the goal's margin. The pipeline runs with ``max_concurrency=64``, so at c=64 it has
as many requests in flight as plain aiohttp (whose pool allows 100); at its default of 16 it
queues 48 of 64 callers, which is printed as "pre-encoded, 16 slots" at c=64 and not judged.

Goals (issue 10; the script exits 1 when one is missed):

    1  our added CPU / the floor's added CPU <= 1.15 at c=1 and c=16; added CPU = the set-up's
       CPU per call minus the uninstrumented CPU of the same code (pipeline for ours, plain
       aiohttp for the hand-written floor). The floor gives each attribute when ours does: at
       span start, or (the response's model, tokens, finish reasons, the outcome) in one
       ``set_attributes`` once known. Until 2026-12-01 it gave every attribute at span start,
       which no real instrumentation can (it would know the response before sending the
       request); that floor is still measured and printed ("SDK floor, all at start").
    2  at 20 ms c=16, ours on/off throughput >= 0.92 and above the official instrumentation's
    3  AsyncHybridPixelLLM.generate_encoded (pre-encoded) / plain aiohttp (JSON per call),
       calls/s, >= 0.9, at c=1/16/64
    5  a sampled-out call (parent-based sampler says no) adds <= 20 us of CPU
    5b the same, beyond what its metric records cost the SDK by themselves (the hand-written
       "metrics floor": the same records, no span, around plain aiohttp): <= 20 us. Metrics
       count every call, so no sampled-out call goes below that floor through the SDK; 5 stays
       as the issue wrote it and reports its miss.
    6  generate (cheap encoder) / generate_encoded throughput >= 0.8, c=1/16/64

    python benchmarks/bench_overhead_vs_peers.py            # full (~10 min, busy 2 cores)
    python benchmarks/bench_overhead_vs_peers.py --quick    # a smoke run (few calls: noisy)
    python benchmarks/bench_overhead_vs_peers.py --only wire --calls 2000   # steadier wire figures

Requires the ``bench`` extra (openai, opentelemetry-instrumentation-genai-openai).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import WorkerProcess, simulator
from _peer_calls import worker_main

FLOOR_GOAL = 1.15
THROUGHPUT_GOAL = 0.92
WIRE_GOAL = 0.9
UNSAMPLED_GOAL_US = 20.0
CHEAP_ENCODER_GOAL = 0.8

Case = tuple[str, str]  # (set-up, call kind)
TELEMETRY_CASES: dict[str, Case] = {
    "plain aiohttp": ("none", "plain"),
    "SDK floor (hand-written)": ("floor", "floor"),
    "SDK floor, all at start": ("floor", "floor-at-start"),
    "pipeline off (floor process)": ("floor", "generate"),
    "SDK floor around the pipeline": ("floor", "floor-pipeline"),
    "metrics floor (hand-written)": ("floor", "metrics-floor"),
    "ours off": ("none", "generate"),
    "ours on": ("ours", "generate"),
    "ours on, sampled out": ("ours-unsampled", "generate"),
    "AsyncOpenAI off": ("none", "openai"),
    "AsyncOpenAI + official on": ("official", "openai"),
}
WIRE_BASE = "plain aiohttp, JSON per call"
WIRE_CASES: dict[str, Case] = {
    WIRE_BASE: ("none", "plain-per-call"),
    "plain aiohttp, body encoded once": ("none", "plain"),
    "client alone": ("none", "client"),
    "pre-encoded": ("none", "encoded"),
    "generate (encoder)": ("none", "generate"),
}
# Above 16 callers: the pipeline at its default max_concurrency (16), which queues the rest.
DEFAULT_SLOTS_CASE: dict[str, Case] = {"pre-encoded, 16 slots": ("none", "encoded-default")}


@contextlib.contextmanager
def workers(
    setups: Sequence[str], sim_url: str, env: dict[str, str] | None = None
) -> Iterator[dict[str, WorkerProcess]]:
    started = {s: WorkerProcess(s, worker_main, s, sim_url, env=env) for s in setups}
    try:
        shapes = {s: w.answer() for s, w in started.items()}
        if shapes.get("floor"):
            print(f"  floor replays what ours emitted for one call: {shapes['floor']}")
        yield started
    finally:
        for worker in started.values():
            worker.close()


@dataclass
class Point:
    """One operating point's samples: per case, per round, calls/s and CPU s per call."""

    title: str
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(self.rates[a], self.rates[b], strict=True)]

    def added_us(self, a: str, b: str) -> list[float]:
        return [(x - y) * 1e6 for x, y in zip(self.cpu[a], self.cpu[b], strict=True)]


def run_point(
    title: str, pool: dict[str, WorkerProcess], cases: dict[str, Case], rounds: int, calls: int,
    concurrency: int,
) -> Point:  # fmt: skip
    names = list(cases)
    for name in names:  # warm-up: connections, lazy imports, caches
        setup, kind = cases[name]
        pool[setup].call("run", kind, max(16, calls // 5), concurrency)
    point = Point(title)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            setup, kind = cases[name]
            wall, cpu = pool[setup].call("run", kind, calls, concurrency)
            point.rates.setdefault(name, []).append(calls / wall)
            point.cpu.setdefault(name, []).append(cpu / calls)
    print(f"  {title}: {rounds} rounds x {calls} calls done", flush=True)
    return point


def _m(values: Sequence[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})"


def print_point(point: Point, base: str) -> None:
    print(f"\n{point.title}: median (min..max) over rounds; ratio vs {base!r} per round")
    print(f"{'case':<28}{'calls/s':>22}{'CPU us/call':>22}{'ratio':>22}")
    for name in point.rates:
        cpu = [c * 1e6 for c in point.cpu[name]]
        print(f"{name:<28}{_m(point.rates[name], '.0f'):>22}{_m(cpu, '.0f'):>22}"
              f"{_m(point.ratio(name, base)):>22}")  # fmt: skip


@dataclass
class Goals:
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def check(self, name: str, target: str, values: Sequence[float], ok: bool) -> None:
        self.rows.append((name, target, _m(values), ok))

    def print(self) -> bool:
        print(f"\n{'goal':<48}{'target':>10}{'median (min..max)':>30}  result")
        for name, target, measured, ok in self.rows:
            print(f"{name:<48}{target:>10}{measured:>30}  {'PASS' if ok else 'MISS'}")
        return all(ok for *_, ok in self.rows)


def telemetry_goals(goals: Goals, point: Point, tag: str) -> None:
    ours = point.added_us("ours on", "ours off")
    floor = point.added_us("SDK floor (hand-written)", "plain aiohttp")
    official = point.added_us("AsyncOpenAI + official on", "AsyncOpenAI off")
    per_round = [o / f for o, f in zip(ours, floor, strict=True)]
    print(f"added CPU us/call at {tag}: ours {_m(ours, '.0f')}, floor {_m(floor, '.0f')}, "
          f"official {_m(official, '.0f')}")  # fmt: skip
    ideal = point.added_us("SDK floor, all at start", "plain aiohttp")
    vs_ideal = [o / f for o, f in zip(ours, ideal, strict=True)]
    print(f"  {tag}: the idealised floor (every attribute at span start) adds {_m(ideal, '.0f')}; "
          f"ours / it {_m(vs_ideal)} (not the goal's floor)")  # fmt: skip
    around = point.added_us("SDK floor around the pipeline", "pipeline off (floor process)")
    vs_around = [o / f for o, f in zip(ours, around, strict=True)]
    print(f"  {tag}: the floor's telemetry around the uninstrumented pipeline (not one request) "
          f"adds {_m(around, '.0f')}; ours / it {_m(vs_around)} (a diagnostic)")  # fmt: skip
    goals.check(f"1 {tag}: added CPU ours / floor", f"<= {FLOOR_GOAL}", per_round,
                statistics.median(per_round) <= FLOOR_GOAL)  # fmt: skip
    unsampled = point.added_us("ours on, sampled out", "ours off")
    goals.check(f"5 {tag}: sampled-out added CPU us", f"<= {UNSAMPLED_GOAL_US:g}", unsampled,
                statistics.median(unsampled) <= UNSAMPLED_GOAL_US)  # fmt: skip
    metrics = point.added_us("metrics floor (hand-written)", "plain aiohttp")
    beyond = [u - m for u, m in zip(unsampled, metrics, strict=True)]
    print(f"  sampled-out at {tag}: ours {_m(unsampled, '.0f')}, its metric records alone "
          f"{_m(metrics, '.0f')} us/call")  # fmt: skip
    goals.check(f"5b {tag}: sampled-out beyond metrics floor us", f"<= {UNSAMPLED_GOAL_US:g}",
                beyond, statistics.median(beyond) <= UNSAMPLED_GOAL_US)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (a few minutes)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per case per round (default 200, --quick 60)")  # fmt: skip
    parser.add_argument("--wire-processes", type=int, default=3,
                        help="fresh worker processes for the wire rounds (default 3)")  # fmt: skip
    parser.add_argument("--latency", type=float, default=0.02, help="server latency (s), 20 ms")
    parser.add_argument(
        "--only", choices=["telemetry", "wire", "latency"], action="append", default=None,
        help="run only these sections (repeatable; default: all)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    calls = args.calls or (60 if args.quick else 200)
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPUs, load {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{rounds} interleaved rounds; client CPU = worker process CPU per call")  # fmt: skip
    only = set(args.only or ["telemetry", "wire", "latency"])
    goals, points, failures = Goals(), [], {}
    if only & {"telemetry", "wire"}:
        failures |= zero_latency(goals, points, only, rounds, calls, args.wire_processes)
    if "latency" in only:
        failures |= with_latency(goals, points, args.latency, rounds, max(calls, 320))
    for point, base in points:
        print_point(point, base)
    if any(failures.values()):
        print(f"warning: failed calls {failures} (the simulator should be healthy)")
    ok = goals.print()
    print(f"\ntotal {time.perf_counter() - started:.0f} s; "
          + ("every goal met" if ok else "a goal was missed: exit 1"))  # fmt: skip
    return 0 if ok else 1


def zero_latency(
    goals: Goals, points: list[tuple[Point, str]], only: set[str], rounds: int, calls: int,
    processes: int,
) -> dict[str, int]:  # fmt: skip
    """c=1 and c=16 telemetry cases, then the wire cases at c=1/16/64 (one simulator)."""
    setups = ["none", "ours", "ours-unsampled", "floor", "official"]
    failures: dict[str, int] = {}
    with simulator(0.0) as sim_url:
        if "telemetry" in only:
            with workers(setups, sim_url) as pool:
                for c in (1, 16):
                    point = run_point(
                        f"zero latency, c={c}", pool, TELEMETRY_CASES, rounds, calls, c
                    )
                    points.append((point, "ours off"))
                    telemetry_goals(goals, point, f"c={c}")
                failures |= {s: w.call("info")["failures"] for s, w in pool.items()}
        if "wire" in only:
            failures |= wire(goals, points, sim_url, rounds, calls, processes)
    return failures


def wire(
    goals: Goals, points: list[tuple[Point, str]], sim_url: str, rounds: int, calls: int,
    processes: int,
) -> dict[str, int]:  # fmt: skip
    """The uninstrumented cases at c=1/16/64, pooled over ``processes`` fresh worker processes.

    Fresh: not the worker that ran the telemetry cases (what ran in a process before shifts
    plain aiohttp's CPU per call by ~10% here). Several: one process's memory layout (hash
    seed, allocation addresses) moves these ~200 us calls by as much, in either direction, so
    the rounds are spread over processes with hash seeds 1..N and every ratio is still taken
    within one round of one process.
    """
    each = max(1, -(-rounds // processes))
    merged = {c: Point(f"wire, c={c}") for c in (1, 16, 64)}
    failures: dict[str, int] = {}
    for k in range(1, processes + 1):
        with workers(["none"], sim_url, env={"PYTHONHASHSEED": str(k)}) as pool:
            for c, point in merged.items():
                cases = WIRE_CASES if c <= 16 else {**WIRE_CASES, **DEFAULT_SLOTS_CASE}
                title = f"wire, c={c}, process {k}/{processes}"
                part = run_point(title, pool, cases, each, max(calls, 4 * c), c)
                for name in part.rates:
                    point.rates.setdefault(name, []).extend(part.rates[name])
                    point.cpu.setdefault(name, []).extend(part.cpu[name])
            failures[f"none (wire {k})"] = pool["none"].call("info")["failures"]
    for c, point in merged.items():
        points.append((point, WIRE_BASE))
        wire = point.ratio("pre-encoded", WIRE_BASE)
        goals.check(f"3 c={c}: pre-encoded / plain aiohttp", f">= {WIRE_GOAL}", wire,
                    statistics.median(wire) >= WIRE_GOAL)  # fmt: skip
        once = point.ratio("pre-encoded", "plain aiohttp, body encoded once")
        print(f"  c={c}: pre-encoded / plain aiohttp with the body encoded once "
              f"(not the goal's baseline): {_m(once)}")  # fmt: skip
        core = point.added_us("pre-encoded", "client alone")
        print(f"  c={c}: CPU us/call the pipeline core adds to its client: {_m(core, '.0f')}")
        cheap = point.ratio("generate (encoder)", "pre-encoded")
        goals.check(f"6 c={c}: generate (encoder) / pre-encoded", f">= {CHEAP_ENCODER_GOAL}",
                    cheap, statistics.median(cheap) >= CHEAP_ENCODER_GOAL)  # fmt: skip
    return failures


def with_latency(
    goals: Goals, points: list[tuple[Point, str]], latency: float, rounds: int, calls: int
) -> dict[str, int]:
    """Throughput ratios at a realistic server latency, c=16: ours and the official one."""
    lat = f"{latency * 1e3:g} ms"
    with simulator(latency) as sim_url, workers(["none", "ours", "official"], sim_url) as pool:
        cases = {k: v for k, v in TELEMETRY_CASES.items() if v[0] in ("none", "ours", "official")}
        point = run_point(f"{lat} latency, c=16", pool, cases, rounds, calls, 16)
        points.append((point, "ours off"))
        ours = point.ratio("ours on", "ours off")
        official = point.ratio("AsyncOpenAI + official on", "AsyncOpenAI off")
        goals.check(f"2 {lat} c=16: throughput ours on/off", f">= {THROUGHPUT_GOAL}", ours,
                    statistics.median(ours) >= THROUGHPUT_GOAL)  # fmt: skip
        ahead = [o - f for o, f in zip(ours, official, strict=True)]
        goals.check(f"2 {lat} c=16: ours ratio - official ratio", "> 0", ahead,
                    statistics.median(ahead) > 0)  # fmt: skip
        return {f"{s}@{lat}": w.call("info")["failures"] for s, w in pool.items()}


if __name__ == "__main__":
    sys.exit(main())
