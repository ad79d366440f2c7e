"""Per-call cost of the OpenTelemetry instrumentation of ``generate_async``, in one run.

Variants, each in its own worker process (so each sets up telemetry exactly as a user would,
with one :func:`~pixel_llm_otel.telemetry.configure` call, and none sees another's providers):

    off     uninstrumented: telemetry never imported, the pipeline runs the no-op observer
    off2    uninstrumented again: an A/A control that shows the noise floor of this machine
    sdk     configure(span_exporter=<no-op>, metric_reader=InMemoryMetricReader())
    otlp    configure(endpoint=<local OTLP/HTTP receiver>): traces, metrics and logs exported
    down    configure(endpoint=<closed loopback port>): the collector is down

Two operating points, in the same run:

    zero latency   the issue's definition: the simulator (``pixel-llm-otel simulate``, scenario
                   ``healthy``) answers at once, calls are sequential; telemetry is compared with
                   a ~1 ms call, so this is the worst case
    realistic      the same simulator with ``--latency 0.05`` (a fast local LLM), concurrency 16
                   (``--latency``, ``--realistic-concurrency``): variants ``off@lat``, ``sdk@lat``
                   and ``otlp@lat``; throughput is bounded by the server, so the cost shows as
                   CPU time per call rather than as lost throughput

Per-call overhead is reported in microseconds twice: from wall time (1/throughput, sequential
calls only) and from the worker's process CPU time (all its threads: the event loop and the
SDK's export threads), both as medians of per-round differences against ``off``.

Each simulator runs in its own process, and so does the OTLP receiver (the project's collector
binary from ``~/.cache/pixel-llm-otel/bin`` with a debug exporter when it is there, else a small
aiohttp receiver answering 200 on /v1/traces, /v1/metrics, /v1/logs). Only one worker runs calls
at a time; the rounds interleave the variants (the order rotates each round) so drift on a shared
machine hits them alike, and medians over rounds are reported. The encoder is a stand-in that
returns the same features for the same small image at no cost, so the encode span is still
there but encoder time is equal (and ~0) in every variant.

Phases: (1) throughput at zero latency, instrumented/uninstrumented per round, then the same at
the realistic latency; (2) p50/p99
latency, endpoint down vs up, over the same rounds; (3) memory: a fresh ``down`` worker makes
10,000 calls, RSS sampled every 1,000, plus the dropped-span count from ``handle.dropped()``.

    python benchmarks/bench_telemetry_overhead.py            # full run (~2 minutes)
    python benchmarks/bench_telemetry_overhead.py --quick    # a few hundred calls, < 30 s
    python benchmarks/bench_telemetry_overhead.py --profile sdk   # cProfile of one variant
    python benchmarks/bench_telemetry_overhead.py --latency 0     # skip the realistic variant

Targets are reported with pass/fail marks; the exit code never depends on them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import glob
import io
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MODEL, FixedEncoder, WorkerProcess, free_port, serve, simulator

VARIANTS: dict[str, str] = {
    "off": "uninstrumented",
    "off2": "uninstrumented (A/A control)",
    "sdk": "SDK, no-op exporter",
    "otlp": "OTLP/HTTP to receiver (up)",
    "down": "OTLP/HTTP to closed port (down)",
}
REALISTIC: dict[str, str] = {
    "off@lat": "uninstrumented",
    "sdk@lat": "SDK, no-op exporter",
    "otlp@lat": "OTLP/HTTP to receiver (up)",
}
THROUGHPUT_TARGET = 0.95  # instrumented / uninstrumented calls per second, at least
P99_TARGET = 1.05  # p99 endpoint down / endpoint up, at most
MEMORY_TARGET_MIB = 10.0  # RSS growth after warm-up, at most (a span is ~1-2 KiB: 40k queued
#                           spans would be tens of MiB)
MIB = 1024 * 1024


# --- the worker side (one process per variant) -----------------------------------------------
def _rss_bytes() -> int:
    """Resident set size now (Linux ``/proc``), else the peak from ``getrusage``."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _setup_telemetry(variant: str, otlp_url: str | None) -> tuple[Any, Any]:
    """``(handle, counting exporter)`` for ``variant``; ``(None, None)`` when uninstrumented."""
    variant = variant.split("@")[0]  # "sdk@lat": the sdk set-up, against the other simulator
    if variant.startswith("off"):
        return None, None
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from pixel_llm_otel.telemetry import configure

    class CountingExporter(SpanExporter):
        """A no-op span exporter that only counts what reaches it."""

        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    if variant == "sdk":
        exporter = CountingExporter()
        handle = configure(span_exporter=exporter, metric_reader=InMemoryMetricReader())
        return handle, exporter
    return configure(endpoint=otlp_url, protocol="http/protobuf"), None


@dataclass
class _Worker:
    """The state of one worker process: its telemetry, pipeline and event loop."""

    variant: str
    handle: Any
    exporter: Any
    llm: Any
    image: Any
    loop: asyncio.AbstractEventLoop
    failures: int = 0
    calls: int = 0

    async def calls_async(self, count: int, concurrency: int) -> list[float]:
        latencies: list[float] = []
        clock = time.perf_counter
        llm, image = self.llm, self.image

        async def run(n: int) -> None:
            for _ in range(n):
                started = clock()
                text = await llm.generate_async(image)
                latencies.append(clock() - started)
                if text is None:
                    self.failures += 1

        share, extra = divmod(count, concurrency)
        await asyncio.gather(*(run(share + (i < extra)) for i in range(concurrency)))
        self.calls += count
        return latencies

    def run_calls(self, count: int, concurrency: int) -> list[float]:
        return self.loop.run_until_complete(self.calls_async(count, concurrency))

    def timed_calls(self, count: int, concurrency: int) -> tuple[float, list[float], float]:
        """``(wall s, latencies, process CPU s)`` of ``count`` calls, export settled after."""
        cpu, started = time.process_time(), time.perf_counter()
        latencies = self.run_calls(count, concurrency)
        wall = time.perf_counter() - started
        self.settle()  # export work of these calls is theirs: counted in CPU, not in wall
        return wall, latencies, time.process_time() - cpu

    def settle(self) -> None:
        """Finish background export work now, so it does not run during another variant."""
        if self.handle is not None and not self.variant.startswith("down"):
            self.handle.force_flush(5000)

    def info(self) -> dict[str, Any]:
        dropped = self.handle.dropped() if self.handle is not None else None
        retry = self.llm.retry_policy.stats()
        return {
            "calls": self.calls,
            "failures": self.failures,
            "retries": retry.retries,
            "exported_spans": None if self.exporter is None else self.exporter.spans,
            "dropped_spans": None if dropped is None else dropped.spans,
            "dropped_tracked": None if dropped is None else dropped.tracked,
        }


def _make_worker(variant: str, sim_url: str, otlp_url: str | None) -> _Worker:
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # only the arguments below decide what is exported
    handle, exporter = _setup_telemetry(variant, otlp_url)

    import torch

    from pixel_llm_otel import hooks
    from pixel_llm_otel.monitoring import StructuredLogger
    from pixel_llm_otel.pipeline import HybridPixelLLM

    instrumented = hooks.get_observer() is not hooks.NOOP_OBSERVER
    if instrumented != (handle is not None):
        raise RuntimeError(f"{variant}: instrumented={instrumented}, expected the opposite")
    llm = HybridPixelLLM(
        sim_url, MODEL, encoder=FixedEncoder(), logger=StructuredLogger(
            "bench", level="ERROR", stream=io.StringIO()
        )
    )  # fmt: skip
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
    return _Worker(variant, handle, exporter, llm, image, asyncio.new_event_loop())


def _memory(worker: _Worker, total: int, every: int, concurrency: int) -> dict[str, Any]:
    """RSS (after a full collection) every ``every`` calls; drops during these calls."""
    before = worker.info()
    gc.collect()
    samples: list[tuple[int, int]] = [(0, _rss_bytes())]
    done = 0
    while done < total:
        step = min(every, total - done)
        worker.run_calls(step, concurrency)
        done += step
        gc.collect()
        samples.append((done, _rss_bytes()))
    after = worker.info()
    dropped = (
        None if after["dropped_spans"] is None else after["dropped_spans"] - before["dropped_spans"]
    )
    return {**after, "samples": samples, "calls": total, "dropped_spans": dropped}


def _profile(worker: _Worker, count: int, concurrency: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    worker.run_calls(count, concurrency)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def worker_main(
    variant: str, sim_url: str, otlp_url: str | None, quiet: bool, conn: Connection
) -> None:
    """Serve commands from the parent until ``stop``: ``run``, ``memory``, ``profile``."""

    def handle(worker: Any, command: str, args: tuple[Any, ...]) -> tuple[Any, bool]:
        if command == "run":
            return worker.timed_calls(*args), False
        if command == "memory":
            return _memory(worker, *args), False
        if command == "profile":
            return _profile(worker, *args), False
        if command == "info":
            return worker.info(), False
        with contextlib.suppress(Exception):  # stop
            worker.loop.run_until_complete(worker.llm.aclose())
        if worker.handle is not None and not variant.startswith("down"):
            worker.handle.shutdown()
        return None, True

    serve(conn, lambda: (_make_worker(variant, sim_url, otlp_url), None), handle, quiet=quiet)


# --- the parent side: processes ----------------------------------------------------------------
def _wait_port(port: int, process: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.settimeout(0.2)
            sock.connect(("127.0.0.1", port))
            return True
        time.sleep(0.05)
    return False


_COLLECTOR_CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
    metrics: {{receivers: [otlp], exporters: [debug]}}
    logs: {{receivers: [otlp], exporters: [debug]}}
"""

_SINK = """\
import sys
from aiohttp import web

async def accept(request):
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")

app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/v1/{signal}", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _collector_binary() -> str | None:
    pattern = str(Path.home() / ".cache/pixel-llm-otel/bin/otelcol-*/otelcol-pixel-llm")
    found = [p for p in sorted(glob.glob(pattern)) if Path(p).with_name(".complete").exists()]
    return found[-1] if found else None


@contextlib.contextmanager
def otlp_receiver(kind: str) -> Iterator[tuple[str, str]]:
    """A local OTLP/HTTP receiver: ``(base URL, description)``."""
    port = free_port()
    binary = _collector_binary() if kind in ("auto", "collector") else None
    if kind == "collector" and binary is None:
        raise SystemExit("no collector binary under ~/.cache/pixel-llm-otel/bin")
    with tempfile.TemporaryDirectory() as tmp:
        if binary is not None:
            config = Path(tmp, "otelcol.yaml")
            config.write_text(_COLLECTOR_CONFIG.format(port=port))
            command = [binary, "--config", f"file:{config}"]
            what = f"otelcol {Path(binary).parent.name} (debug exporter)"
        else:
            command = [sys.executable, "-c", _SINK, str(port)]
            what = "aiohttp OTLP/HTTP receiver (200 to every POST)"
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not _wait_port(port, process, 20.0):
                raise RuntimeError(f"the OTLP receiver did not start: {' '.join(command)}")
            yield f"http://127.0.0.1:{port}", what
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


# --- statistics and the report -----------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Rounds:
    """Per-variant samples collected over the interleaved rounds."""

    rates: dict[str, list[float]] = field(default_factory=dict)  # calls per second, per round
    latencies: dict[str, list[list[float]]] = field(default_factory=dict)  # per round
    cpu: dict[str, list[float]] = field(default_factory=dict)  # process CPU s per call, per round

    def add(self, variant: str, wall: float, latencies: list[float], cpu: float) -> None:
        self.rates.setdefault(variant, []).append(len(latencies) / wall)
        self.latencies.setdefault(variant, []).append(latencies)
        self.cpu.setdefault(variant, []).append(cpu / len(latencies))

    def wall_overhead_us(self, variant: str, base: str) -> float:
        """Median over rounds of 1/throughput minus the base's: wall microseconds per call."""
        pairs = zip(self.rates[variant], self.rates[base], strict=True)
        return statistics.median(1e6 / a - 1e6 / b for a, b in pairs)

    def cpu_overhead_us(self, variant: str, base: str) -> float:
        """Median over rounds of process CPU per call minus the base's, in microseconds."""
        pairs = zip(self.cpu[variant], self.cpu[base], strict=True)
        return statistics.median((a - b) * 1e6 for a, b in pairs)

    def ratios(self, variant: str, base: str) -> list[float]:
        """Per-round throughput ratios ``variant / base`` (same round, so the same drift)."""
        return [a / b for a, b in zip(self.rates[variant], self.rates[base], strict=True)]

    def pooled(self, variant: str) -> list[float]:
        return [x for round_ in self.latencies[variant] for x in round_]

    def round_quantile_ratios(self, a: str, b: str, q: float) -> list[float]:
        return [
            percentile(x, q) / percentile(y, q)
            for x, y in zip(self.latencies[a], self.latencies[b], strict=True)
        ]


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run_rounds(
    workers: dict[str, WorkerProcess], rounds: int, calls: int, concurrency: int
) -> Rounds:
    order = list(workers)
    for worker in workers.values():  # warm-up: connections, caches, lazy imports
        worker.call("run", max(20, calls // 5), concurrency)
    results = Rounds()
    for index in range(rounds):
        rotated = order[index % len(order):] + order[:index % len(order)]  # fmt: skip
        for variant in rotated:
            wall, latencies, cpu = workers[variant].call("run", calls, concurrency)
            results.add(variant, wall, latencies, cpu)
        line = "  ".join(f"{v} {results.rates[v][-1]:7.0f}/s" for v in order)
        print(f"  round {index + 1}/{rounds}: {line}", flush=True)
    return results


def report_throughput(
    results: Rounds, variants: dict[str, str], base: str, title: str, tag: str, wall_us: bool
) -> list[tuple[str, str, str, bool | None]]:
    """One operating point: throughput ratio and per-call overhead of each variant vs ``base``.

    ``wall_us``: also report the wall-time overhead per call (meaningful for sequential calls
    only; with calls in flight concurrently, 1/throughput is not the time of one call).
    """
    print(f"\n{title} (median over rounds; overhead = median of per-round differences vs "
          f"{base})")  # fmt: skip
    print(f"{'variant':<34}{'calls/s':>9}{'ratio':>8}{'ratio range':>14}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'CPU us':>8}{'+CPU us':>9}{'+wall us':>10}")  # fmt: skip
    rows: list[tuple[str, str, str, bool | None]] = []
    for variant, label in variants.items():
        if variant not in results.rates:
            continue
        rate = statistics.median(results.rates[variant])
        ratios = results.ratios(variant, base)
        pooled = results.pooled(variant)
        ratio = statistics.median(ratios)
        p50, p99 = percentile(pooled, 0.5) * 1e3, percentile(pooled, 0.99) * 1e3
        cpu = statistics.median(results.cpu[variant]) * 1e6
        cpu_over = results.cpu_overhead_us(variant, base)
        wall_over = results.wall_overhead_us(variant, base) if wall_us else None
        wall_text = f"{wall_over:>10.0f}" if wall_over is not None else f"{'-':>10}"
        print(f"{label:<34}{rate:>9.0f}{ratio:>8.3f}{_spread(ratios):>14}{p50:>9.3f}{p99:>9.3f}"
              f"{cpu:>8.0f}{cpu_over:>9.0f}{wall_text}")  # fmt: skip
        if variant == base:
            continue
        if variant.startswith("off"):
            rows.append((f"throughput {variant}/{base}", "~1 (noise)", f"{ratio:.3f}", None))
            continue
        name = variant.split("@")[0]
        rows.append((f"{tag}: throughput {name}/off", f">= {THROUGHPUT_TARGET}", f"{ratio:.3f}",
                     ratio >= THROUGHPUT_TARGET))  # fmt: skip
        over = f"{cpu_over:+.0f} CPU" if wall_over is None else f"{wall_over:+.0f} wall"
        rows.append((f"{tag}: overhead {name} us/call", "(info)", over, None))
    spread = results.rates[base]
    print(f"round-to-round spread of the baseline: {_spread(spread)} calls/s "
          f"(cv {statistics.pstdev(spread) / statistics.mean(spread):.1%})")  # fmt: skip
    return rows


def report_down(results: Rounds) -> list[tuple[str, str, str, bool | None]]:
    if "down" not in results.rates or "otlp" not in results.rates:
        return []
    up, down = results.pooled("otlp"), results.pooled("down")
    p50 = percentile(down, 0.5) / percentile(up, 0.5)
    p99 = percentile(down, 0.99) / percentile(up, 0.99)
    per_round = results.round_quantile_ratios("down", "otlp", 0.99)
    print("\nEndpoint down vs up (pooled over rounds)")
    print(f"  p50 {percentile(down, 0.5) * 1e3:.3f} ms vs {percentile(up, 0.5) * 1e3:.3f} ms: "
          f"ratio {p50:.3f}")  # fmt: skip
    print(f"  p99 {percentile(down, 0.99) * 1e3:.3f} ms vs {percentile(up, 0.99) * 1e3:.3f} ms: "
          f"ratio {p99:.3f} (per-round ratios {_spread(per_round)}, "
          f"median {statistics.median(per_round):.3f})")  # fmt: skip
    return [
        ("p50 down/up", "(info)", f"{p50:.3f}", None),
        ("p99 down/up", f"<= {P99_TARGET}", f"{p99:.3f}", p99 <= P99_TARGET),
    ]


def _growth(samples: list[tuple[int, int]]) -> tuple[float, float]:
    """(MiB from the first sample after warm-up to the last, MiB over the second half)."""
    warm = samples[1][1] if len(samples) > 2 else samples[0][1]
    half = samples[len(samples) // 2][1]
    return (samples[-1][1] - warm) / MIB, (samples[-1][1] - half) / MIB


def report_memory(
    down: dict[str, Any], off: dict[str, Any], every: int
) -> list[tuple[str, str, str, bool | None]]:
    print(f"\nMemory over {down['calls']:,} more calls (RSS after gc every {every:,} calls; MiB)")
    for name, memory in (("down", down), ("off", off)):
        samples: list[tuple[int, int]] = memory["samples"]
        growth, tail = _growth(samples)
        print(f"  {name:<5}" + " ".join(f"{rss / MIB:6.1f}" for _, rss in samples))
        print(f"        growth after the first {samples[1][0]:,} calls {growth:+.2f} MiB, "
              f"second half {tail:+.2f} MiB")  # fmt: skip
    growth, _ = _growth(down["samples"])
    control, _ = _growth(off["samples"])
    spans_made = down["calls"] * 4  # generate, encode, chat, POST
    print(f"  down: dropped spans counted {down['dropped_spans']:,} of ~{spans_made:,} made "
          f"(tracked={down['dropped_tracked']}); failed calls {down['failures']}")  # fmt: skip
    return [
        ("RSS growth after warm-up (down)", f"< {MEMORY_TARGET_MIB:.0f} MiB",
         f"{growth:+.2f} MiB", growth < MEMORY_TARGET_MIB),
        ("  same, uninstrumented control", "(info)", f"{control:+.2f} MiB", None),
        ("dropped spans counted (down)", "> 0", f"{down['dropped_spans']:,}",
         bool(down["dropped_spans"])),
    ]  # fmt: skip


def print_summary(rows: list[tuple[str, str, str, bool | None]]) -> None:
    print("\nSummary (benchmarks report; the exit code does not depend on these)")
    print(f"{'check':<46}{'target':>12}{'measured':>14}  result")
    for name, target, measured, ok in rows:
        mark = "-" if ok is None else _mark(ok)
        print(f"{name:<46}{target:>12}{measured:>14}  {mark}")


@dataclass(frozen=True)
class Plan:
    rounds: int
    calls: int
    memory_calls: int
    memory_every: int
    realistic_calls: int


def _start(
    variants: Sequence[str], sim_url: str, otlp_url: str, quiet: bool
) -> dict[str, WorkerProcess]:
    down_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    workers = {
        v: WorkerProcess(
            v, worker_main, v, sim_url, down_url if v.startswith("down") else otlp_url, quiet
        )
        for v in variants
    }
    for worker in workers.values():
        worker.answer()  # ready
    return workers


def _close(workers: dict[str, WorkerProcess]) -> None:
    for worker in workers.values():
        worker.close()


def run_realistic(
    args: argparse.Namespace, plan: Plan, otlp_url: str
) -> tuple[Rounds, dict[str, dict[str, Any]]]:
    """The realistic operating point: its own simulator (fixed latency) and workers."""
    with simulator(args.latency) as sim_url:
        print(f"realistic: simulator {sim_url} (+{args.latency * 1e3:g} ms), {plan.rounds} rounds "
              f"x {plan.realistic_calls} calls, concurrency {args.realistic_concurrency}",
              flush=True)  # fmt: skip
        workers = _start(list(REALISTIC), sim_url, otlp_url, not args.verbose)
        try:
            results = run_rounds(
                workers, plan.rounds, plan.realistic_calls, args.realistic_concurrency
            )
            return results, {v: w.call("info") for v, w in workers.items()}
        finally:
            _close(workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred calls, < 30 s")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=None, help="calls per variant per round")
    parser.add_argument("--memory-calls", type=int, default=None, help="calls of the memory run")
    parser.add_argument("--concurrency", type=int, default=1, help="calls in flight per worker")
    parser.add_argument(
        "--receiver", choices=["auto", "collector", "aiohttp"], default="auto",
        help="OTLP receiver: the collector binary if found (auto), or a small aiohttp one",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=sorted(VARIANTS), default=None,
        help="only run this variant under cProfile and print the top entries",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="keep the workers' stderr")
    parser.add_argument(
        "--latency", type=float, default=0.05,
        help="added latency (s) of the realistic variant's simulator; 0 skips it (default 0.05)",
    )  # fmt: skip
    parser.add_argument(
        "--realistic-concurrency", type=int, default=16,
        help="calls in flight per worker in the realistic variant (default 16)",
    )  # fmt: skip
    parser.add_argument(
        "--realistic-calls", type=int, default=None,
        help="calls per variant per round in the realistic variant",
    )  # fmt: skip
    args = parser.parse_args(argv)
    plan = Plan(5, 1000, 10_000, 1000, 640) if not args.quick else Plan(3, 100, 1000, 100, 160)
    plan = Plan(
        args.rounds or plan.rounds,
        args.calls or plan.calls,
        args.memory_calls or plan.memory_calls,
        max(1, (args.memory_calls or plan.memory_calls) // 10),
        args.realistic_calls or plan.realistic_calls,
    )
    started = time.perf_counter()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with simulator() as sim_url, otlp_receiver(args.receiver) as (otlp_url, receiver):
        print(f"simulator {sim_url} (healthy, own process); receiver: {receiver}")
        print(f"{os.cpu_count()} CPUs, load average {load} at start; {plan.rounds} rounds x "
              f"{plan.calls} calls per variant, concurrency {args.concurrency}; fixed no-cost "
              "encoder")  # fmt: skip
        if args.profile:
            workers = _start([args.profile], sim_url, otlp_url, not args.verbose)
            try:
                workers[args.profile].call("run", 200, args.concurrency)
                print(workers[args.profile].call("profile", plan.calls * 2, args.concurrency))
            finally:
                _close(workers)
            return 0
        workers = _start(list(VARIANTS), sim_url, otlp_url, not args.verbose)
        try:
            print("zero latency:", flush=True)
            results = run_rounds(workers, plan.rounds, plan.calls, args.concurrency)
            infos = {v: w.call("info") for v, w in workers.items()}
            print(f"memory: {plan.memory_calls:,} more calls each for down and off ...", flush=True)
            memory = {
                v: workers[v].call("memory", plan.memory_calls, plan.memory_every, args.concurrency)
                for v in ("down", "off")
            }
        finally:
            _close(workers)
        realistic = None
        if args.latency > 0:
            realistic, realistic_infos = run_realistic(args, plan, otlp_url)
            infos.update(realistic_infos)
    for variant, info in infos.items():
        if info["failures"] or info["retries"]:
            print(f"warning: {variant}: {info['failures']} failed calls, "
                  f"{info['retries']} retries (the simulator should be healthy)")  # fmt: skip
    rows = report_throughput(
        results, VARIANTS, "off", "Zero latency: sequential generate_async calls (issue 4's "
        "definition; the worst case)", "zero latency", wall_us=args.concurrency == 1,
    )  # fmt: skip
    if realistic is not None:
        point = f"+{args.latency * 1e3:g} ms, c={args.realistic_concurrency}"
        rows += report_throughput(
            realistic, REALISTIC, "off@lat", f"Realistic: simulator {point} (calls in flight)",
            point, wall_us=False,
        )  # fmt: skip
    exported, sdk_calls = infos["sdk"]["exported_spans"], infos["sdk"]["calls"]
    print(f"spans per call (sdk variant, counted by its exporter): {exported / sdk_calls:.2f}")
    rows += report_down(results)
    rows += report_memory(memory["down"], memory["off"], plan.memory_every)
    print_summary(rows)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
