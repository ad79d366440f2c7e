"""Client memory under huge and compressed response bodies vs a small body, in the same run.

Each measurement runs one ``LMStudioClient.chat`` in a fresh child process (peak RSS is per
process) against a raw loopback server in this process, after a warm-up call, and reports the
growth of the child's peak RSS caused by that call, and its CPU time. Scenarios, interleaved
over the rounds: a small completion (the baseline), a 64 MiB plain body, a 64 MiB chunked body,
gzip and deflate bombs that inflate to 256 MiB, and an endless event stream.

Goal (exit 1 when missed): for every hostile body, the median peak growth stays within
``2 x max_response_bytes + 16 MiB`` of the baseline's, and the call ends in
``ERR_RESPONSE_TOO_LARGE``.

python benchmarks/bench_response_memory.py [--quick] [--rounds N] [--limit BYTES]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
import zlib

MiB = 1024 * 1024
COMPLETION = json.dumps(
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": "a caption"}}]}
).encode()
HUGE = 64 * MiB
BOMB = 256 * MiB


# --- the server (this process) ------------------------------------------------------------
def _bombs() -> dict[str, bytes]:
    zeros = bytes(BOMB)
    return {"gzip": gzip.compress(zeros, 6), "deflate": zlib.compress(zeros, 6)}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        scenario = head.split(b" ")[1].split(b"/")[1].decode()
        await SCENARIOS[scenario](writer)
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


def _head(extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


async def _small(w: asyncio.StreamWriter) -> None:
    w.write(_head(f"Content-Length: {len(COMPLETION)}\r\n") + COMPLETION)
    await w.drain()


async def _plain(w: asyncio.StreamWriter) -> None:
    w.write(_head(f"Content-Length: {HUGE}\r\n"))
    for _ in range(HUGE // MiB):
        w.write(b" " * MiB)
        await w.drain()


async def _chunked(w: asyncio.StreamWriter) -> None:
    w.write(_head("Transfer-Encoding: chunked\r\n"))
    for _ in range(HUGE // MiB):
        w.write(f"{MiB:x}\r\n".encode() + b" " * MiB + b"\r\n")
        await w.drain()
    w.write(b"0\r\n\r\n")
    await w.drain()


def _bomb(encoding: str):  # type: ignore[no-untyped-def]
    async def send(w: asyncio.StreamWriter) -> None:
        body = BOMBS[encoding]
        w.write(_head(f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n") + body)
        await w.drain()

    return send


async def _sse(w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
    event = b'data: {"choices": [{"index": 0, "delta": {"content": "word "}}]}\n\n'
    for _ in range(HUGE // (len(event) * 1024)):
        w.write(event * 1024)
        await w.drain()


BOMBS: dict[str, bytes] = {}
SCENARIOS = {
    "small": _small,
    "plain-64MiB": _plain,
    "chunked-64MiB": _chunked,
    "gzip-bomb-256MiB": _bomb("gzip"),
    "deflate-bomb-256MiB": _bomb("deflate"),
    "sse-endless": _sse,
}


def _start_server() -> int:
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(_serve, "127.0.0.1", 0))
        ready.append(server.sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True, name="bench-server").start()
    started.wait(10)
    return ready[0]


# --- the child (one measured call) --------------------------------------------------------
def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _child(port: int, scenario: str, limit: int) -> dict[str, object]:
    from pixel_llm_otel.client import LMStudioClient
    from pixel_llm_otel.errors import PixelLMError

    messages = [{"role": "user", "content": "describe"}]
    async with LMStudioClient(f"http://127.0.0.1:{port}/small/v1") as warm:
        await warm.chat(messages, model="m")  # imports, session, first-call allocations
    url = f"http://127.0.0.1:{port}/{scenario}/v1"
    async with LMStudioClient(url, max_response_bytes=limit, total_timeout=60.0) as client:
        before, cpu = _peak_kib(), _cpu()
        try:
            if scenario == "sse-endless":
                await client.chat_via_stream(messages, model="m")
            else:
                await client.chat(messages, model="m")
            outcome = "ok"
        except PixelLMError as exc:
            cause = exc.cause if isinstance(exc.cause, PixelLMError) else exc
            outcome = (
                str(cause.code) if exc.code.value == "ERR_STREAM_INTERRUPTED" else str(exc.code)
            )
        return {"growth_kib": _peak_kib() - before, "cpu_s": _cpu() - cpu, "outcome": outcome}


def _measure(port: int, scenario: str, limit: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(port), scenario, str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--limit", type=int, default=4 * MiB, help="max_response_bytes")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        port, scenario, limit = args.child
        print(json.dumps(asyncio.run(_child(int(port), scenario, int(limit)))))
        return 0

    rounds = args.rounds or (2 if args.quick else 5)
    BOMBS.update(_bombs())
    port = _start_server()
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in SCENARIOS}
    for _ in range(rounds):
        for name in SCENARIOS:
            samples[name].append(_measure(port, name, args.limit))

    def stats(name: str, key: str) -> tuple[float, float, float]:
        values = [float(s[key]) for s in samples[name]]  # type: ignore[arg-type]
        return statistics.median(values), min(values), max(values)

    base, _, _ = stats("small", "growth_kib")
    budget_kib = (2 * args.limit + 16 * MiB) / 1024
    print(
        f"max_response_bytes {args.limit / MiB:.1f} MiB | {rounds} interleaved rounds | "
        f"peak RSS growth of one call in a fresh process (median, min-max) | python "
        f"{sys.version.split()[0]}"
    )
    print(f"{'body':22s} {'growth MiB':>24s} {'vs small':>10s} {'cpu ms':>18s}  outcome")
    failed = []
    for name in SCENARIOS:
        med, low, high = stats(name, "growth_kib")
        cpu, cpu_low, cpu_high = stats(name, "cpu_s")
        outcomes = sorted({str(s["outcome"]) for s in samples[name]})
        print(
            f"{name:22s} {med / 1024:8.1f} ({low / 1024:5.1f}-{high / 1024:5.1f}) "
            f"{(med - base) / 1024:+9.1f} {cpu * 1e3:7.1f} ({cpu_low * 1e3:.0f}-"
            f"{cpu_high * 1e3:.0f})  {','.join(outcomes)}"
        )
        if name == "small":
            if outcomes != ["ok"]:
                failed.append(f"{name}: {outcomes}")
            continue
        if outcomes != ["ERR_RESPONSE_TOO_LARGE"]:
            failed.append(f"{name}: outcome {outcomes}")
        if med - base > budget_kib:
            failed.append(f"{name}: +{(med - base) / 1024:.1f} MiB > {budget_kib / 1024:.1f} MiB")
    print(f"goal: growth - small <= 2 x limit + 16 MiB = {budget_kib / 1024:.1f} MiB; ", end="")
    print("met" if not failed else "MISSED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    if "--child" not in sys.argv:
        print(f"({time.perf_counter() - started:.1f}s)")
    raise SystemExit(code)
