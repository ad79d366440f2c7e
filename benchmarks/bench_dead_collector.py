"""What a dead collector costs ``generate``: p99 with the OTLP endpoint dead or silent,
against telemetry off, measured in one run.

Variants, each in its own worker process set up as a user would (one ``configure()`` call with
defaults, the OTLP/HTTP exporter for traces, metrics and logs):

    off      telemetry never configured (the no-op observer)
    up       ``configure(endpoint=<a receiver answering 200 at once>)``: telemetry on, the
             collector healthy (a reference: what the instrumentation and export themselves cost)
    dead     ``configure(endpoint=<closed loopback port>)``: every connect is refused at once
    silent   ``configure(endpoint=<a port that accepts TCP and never answers>)``: every export
             waits for its timeout

The operating point (default): the simulator (``pixel-llm-otel simulate``, its own process) answers
every chat after ``--latency`` 0.5 s, a fast local vision LLM (real ones take 0.5-3 s), with
``--concurrency`` 4 callers on one event loop. ``--stress`` is the worst case instead: 50 ms and 16
callers, where the instrumentation's own CPU per call (paid with a healthy collector too) shows in
p99 against telemetry off on a small machine; compare dead and silent with ``up`` there. The
encoder is a stand-in at no cost, so the measured difference is telemetry's alone. Each worker
first makes ``--warmup`` calls, past the first failed export, so the dead variants are measured in
their steady state.

Rounds interleave the variants (the order rotates each round). Per round: each variant's p50 and
p99 latency, process CPU per call (all threads: the loop and the SDK's export threads) and
calls/s, the longest GC pause and the count of oldest-generation collections (g2). Reported:
medians over rounds with min-max, and the ratio of each variant's p99 to off's
p99 in the same round (median and min-max over rounds). Then every telemetry worker shuts down
(``handle.shutdown()``), timed, with its dropped counts (``handle.dropped()``).

Exits non-zero when a median p99 ratio exceeds 1.05 or a shutdown exceeds the export timeout
plus 1 s.

    python benchmarks/bench_dead_collector.py            # realistic point, ~7 minutes
    python benchmarks/bench_dead_collector.py --stress   # 50 ms, 16 callers, ~3 minutes
    python benchmarks/bench_dead_collector.py --quick    # a smoke run of the stress point, ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import socket
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MODEL, FixedEncoder, WorkerProcess, free_port, serve, simulator

VARIANTS = ("off", "up", "dead", "silent")
P99_TARGET = 1.05
SHUTDOWN_SLACK_S = 1.0


class _Worker:
    def __init__(self, variant: str, sim_url: str, endpoint: str | None, timeout: float) -> None:
        for key in [k for k in os.environ if k.startswith("OTEL_")]:
            del os.environ[key]  # only the arguments decide what is exported
        self.handle: Any = None
        self.timeout = timeout
        if endpoint is not None:
            from pixel_llm_otel.telemetry import configure

            self.handle = configure(endpoint=endpoint, export_timeout=timeout)
        import torch

        from pixel_llm_otel.monitoring import StructuredLogger
        from pixel_llm_otel.pipeline import AsyncHybridPixelLLM

        logger = StructuredLogger("bench", level="ERROR", stream=io.StringIO())
        self.llm = AsyncHybridPixelLLM(
            lm_studio_url=sim_url, lm_studio_model=MODEL, encoder=FixedEncoder(), logger=logger
        )
        self.image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
        self.loop = asyncio.new_event_loop()
        self.failures = 0
        self.gc_pauses: list[tuple[int, float]] = []  # (generation, seconds) of each collection
        started: list[float] = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.gc_pauses.append((int(info["generation"]), time.perf_counter() - started[0]))

        gc.callbacks.append(on_gc)

    def run(self, count: int, concurrency: int) -> dict[str, Any]:
        latencies: list[float] = []

        async def caller(n: int) -> None:
            for _ in range(n):
                started = time.perf_counter()
                if await self.llm.generate(self.image) is None:
                    self.failures += 1
                latencies.append(time.perf_counter() - started)

        async def all_callers() -> None:
            share, extra = divmod(count, concurrency)
            await asyncio.gather(*(caller(share + (i < extra)) for i in range(concurrency)))

        cpu, wall = time.process_time(), time.perf_counter()
        self.gc_pauses.clear()
        self.loop.run_until_complete(all_callers())
        return {
            "gc_max": max((t for _, t in self.gc_pauses), default=0.0),
            "gc_old": sum(1 for g, _ in self.gc_pauses if g == 2),
            "latencies": latencies,
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "failures": self.failures,
        }

    def shutdown(self) -> dict[str, Any]:
        self.loop.run_until_complete(self.llm.aclose())
        if self.handle is None:
            return {"seconds": 0.0}
        dropped = self.handle.dropped()
        started = time.perf_counter()
        self.handle.shutdown()
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "dropped_spans": dropped.spans,
            "dropped_logs": dropped.logs,
            "by_reason": dict(getattr(dropped, "by_reason", {}) or {}),
        }


def worker_main(variant: str, sim_url: str, endpoint: str | None, timeout: float, conn: Connection):
    """Serve ``run`` / ``shutdown`` (measured, the last command) / ``stop`` from the parent."""
    serve(conn, lambda: (_Worker(variant, sim_url, endpoint, timeout), None), _handle)


def _handle(worker: _Worker, command: str, args: tuple[Any, ...]) -> tuple[Any, bool]:
    if command == "run":
        return worker.run(*args), False
    if command == "shutdown":
        return worker.shutdown(), True
    return None, True  # stop (without the shutdown measurement)


@contextlib.contextmanager
def _receiver() -> Any:
    """A stand-in collector: answers every OTLP/HTTP POST with 200 and an empty body."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _silent_server() -> Any:
    """A port that completes TCP handshakes (the kernel's backlog) and never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    med = statistics.median(values) * scale
    return f"{med:.{digits}f} ({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=120, help="calls per variant per round")
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--export-timeout", type=float, default=5.0)
    parser.add_argument("--stress", action="store_true", help="50 ms, 16 callers, 640 calls")
    parser.add_argument("--quick", action="store_true", help="the stress point, 3 short rounds")
    args = parser.parse_args(argv)
    if args.stress or args.quick:
        args.latency, args.concurrency, args.calls, args.warmup = 0.05, 16, 640, 800
    if args.quick:
        args.rounds, args.calls, args.warmup = 3, 320, 600

    dead = f"http://127.0.0.1:{free_port()}"  # bound, then closed: connects are refused
    with (
        simulator(args.latency) as sim_url,
        _receiver() as up,
        _silent_server() as silent,
    ):
        endpoints = {"off": None, "up": up, "dead": dead, "silent": silent}
        workers = {
            v: WorkerProcess(v, worker_main, v, sim_url, endpoints[v], args.export_timeout)
            for v in VARIANTS
        }
        try:
            for w in workers.values():
                w.answer()  # ready
            for w in workers.values():
                w.call("run", args.warmup, args.concurrency)
            per: dict[str, dict[str, list[float]]] = {
                v: {
                    "p50": [],
                    "p99": [],
                    "cpu": [],
                    "rate": [],
                    "ratio": [],
                    "vs_up": [],
                    "gc_max": [],
                    "gc_old": [],
                }
                for v in VARIANTS
            }
            for r in range(args.rounds):
                k = r % len(VARIANTS)
                order = VARIANTS[k:] + VARIANTS[:k]
                got = {v: workers[v].call("run", args.calls, args.concurrency) for v in order}
                for v in VARIANTS:
                    lat = got[v]["latencies"]
                    per[v]["p50"].append(_p(lat, 0.50))
                    per[v]["p99"].append(_p(lat, 0.99))
                    per[v]["cpu"].append(got[v]["cpu"] / len(lat))
                    per[v]["rate"].append(len(lat) / got[v]["wall"])
                    per[v]["gc_max"].append(got[v]["gc_max"])
                    per[v]["gc_old"].append(got[v]["gc_old"])
                for v in VARIANTS:
                    per[v]["ratio"].append(per[v]["p99"][-1] / per["off"]["p99"][-1])
                    per[v]["vs_up"].append(per[v]["p99"][-1] / per["up"]["p99"][-1])
            shutdowns = {v: workers[v].call("shutdown") for v in VARIANTS}
        finally:
            for w in workers.values():
                w.close()

    print(
        f"operating point: simulator latency {args.latency * 1000:.0f} ms, concurrency "
        f"{args.concurrency}, {args.calls} calls/variant/round, {args.rounds} rounds, "
        f"export timeout {args.export_timeout:g} s"
    )
    header = (
        "variant",
        "p50 ms",
        "p99 ms",
        "p99/off",
        "p99/up",
        "CPU us/call",
        "calls/s",
        "GC max ms",
    )
    print(f"{header[0]:8} " + " ".join(f"{h:>19}" for h in header[1:]))
    ok = True
    for v in VARIANTS:
        ratio = statistics.median(per[v]["ratio"])
        judged = v in ("dead", "silent")
        mark = "" if not judged else ("  ok" if ratio <= P99_TARGET else "  MISSED")
        ok = ok and (not judged or ratio <= P99_TARGET)
        cells = (
            _fmt(per[v]["p50"], 1000),
            _fmt(per[v]["p99"], 1000),
            _fmt(per[v]["ratio"], 1, 3),
            _fmt(per[v]["vs_up"], 1, 3),
            _fmt(per[v]["cpu"], 1e6, 0),
            _fmt(per[v]["rate"], 1, 0),
            _fmt(per[v]["gc_max"], 1000, 0) + f" g2:{int(sum(per[v]['gc_old']))}",
        )
        print(f"{v:8} " + " ".join(f"{c:>19}" for c in cells) + mark)
    print(f"target: dead and silent median p99/off <= {P99_TARGET}")
    limit = args.export_timeout + SHUTDOWN_SLACK_S
    for v in ("dead", "silent"):
        s = shutdowns[v]
        within = s["seconds"] <= limit
        ok = ok and within
        print(
            f"shutdown {v}: {s['seconds']:.2f} s (limit {limit:.1f} s) "
            f"{'ok' if within else 'MISSED'}; dropped spans {s['dropped_spans']}, "
            f"logs {s['dropped_logs']} {s['by_reason']}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
