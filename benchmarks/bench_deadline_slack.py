"""How far past its retry deadline a generate call returns, against servers that never finish.

A raw loopback server stalls in three ways (accepts and stays silent; sends headers then stalls;
trickles a body that never ends, one byte every 50 ms). ``HybridPixelLLM`` with the default
socket timeouts (60 s read, 120 s total) and ``deadline=--deadline`` calls it through ``generate``
(sync) and ``generate_async``; the slack is the time past the deadline. A call that returns at
once (a closed port) runs in the same rounds as the baseline of what one call costs.

Goal (exit 1 when missed): the largest slack of any call <= ``--max-slack`` (0.1 s), and every
call returns ``None`` with a typed deadline error.

python benchmarks/bench_deadline_slack.py [--quick] [--rounds N] [--deadline S] [--max-slack S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import threading
import time

import torch

from pixel_llm_otel.errors import PixelLMError, RetryExhausted
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience import CircuitBreakerConfig, FallbackConfig, RetryConfig

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(v)
                for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            ),
            0,
        )
        await reader.readexactly(length)
        scenario = head.split(b" ")[1].split(b"/")[1]
        if scenario == b"stall":
            writer.write(HEAD + b"Content-Length: 100\r\n\r\n")
        elif scenario == b"trickle":
            writer.write(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
            while True:
                writer.write(b"1\r\n \r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        await asyncio.wait_for(reader.read(), 30)
    writer.close()


def _start_server() -> int:
    port: list[int] = []
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(_serve, "127.0.0.1", 0))
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True, name="bench-server").start()
    ready.wait(10)
    return port[0]


class _Encoder:
    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["features"] * len(features)


def _llm(url: str, deadline: float) -> HybridPixelLLM:
    return HybridPixelLLM(
        url,
        error_config={
            "retry": RetryConfig(initial_delay=0.01, jitter=False, deadline=deadline),
            "circuit_breaker": CircuitBreakerConfig(
                failure_threshold=None, failure_rate_threshold=None
            ),
            "fallback": FallbackConfig(enabled=False),
        },
        encoder=_Encoder(),
        logger=StructuredLogger("bench", level="CRITICAL"),
    )


def _typed(error: BaseException | None) -> bool:
    if isinstance(error, RetryExhausted):
        return error.context.get("reason") in ("deadline", "max_attempts")
    return isinstance(error, PixelLMError)


def _call(url: str, flavour: str, deadline: float, image: torch.Tensor) -> tuple[float, bool]:
    """Seconds one call of a fresh pipeline took, and whether it ended typed."""
    llm = _llm(url, deadline)
    try:
        if flavour == "sync":
            started = time.monotonic()
            result = llm.generate_result(image)
            return time.monotonic() - started, result.text is None and _typed(result.error)

        async def run() -> tuple[float, bool]:
            started = time.monotonic()
            result = await llm.generate_result_async(image)
            elapsed = time.monotonic() - started
            await llm.aclose()
            return elapsed, result.text is None and _typed(result.error)

        return asyncio.run(run())
    finally:
        llm.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--deadline", type=float, default=0.5, help="retry deadline, seconds")
    parser.add_argument("--max-slack", type=float, default=0.1, help="goal, seconds")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    port = _start_server()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    urls = {
        "closed port (baseline)": f"http://127.0.0.1:{closed}/v1",
        "silence": f"http://127.0.0.1:{port}/silence/v1",
        "headers then stall": f"http://127.0.0.1:{port}/stall/v1",
        "endless trickle": f"http://127.0.0.1:{port}/trickle/v1",
    }
    image = torch.rand(3, 8, 8)
    samples: dict[tuple[str, str], list[float]] = {}
    typed: dict[tuple[str, str], bool] = {}
    for _ in range(rounds):
        for name, url in urls.items():
            for flavour in ("sync", "async"):
                elapsed, ok = _call(url, flavour, args.deadline, image)
                samples.setdefault((name, flavour), []).append(elapsed)
                typed[(name, flavour)] = typed.get((name, flavour), True) and ok
    print(
        f"deadline {args.deadline:.2f} s, socket timeouts 60 s read / 120 s total | {rounds} "
        f"interleaved rounds | python {sys.version.split()[0]}"
    )
    print(f"{'server':24s} {'api':6s} {'elapsed s median (min-max)':>30s} {'slack ms max':>13s}")
    failed = []
    for (name, flavour), values in samples.items():
        med = statistics.median(values)
        slack = max(values) - args.deadline
        baseline = name.startswith("closed")
        print(
            f"{name:24s} {flavour:6s} {med:12.3f} ({min(values):.3f}-{max(values):.3f})"
            f" {'-' if baseline else f'{slack * 1e3:.0f}':>13s}"
        )
        if not typed[(name, flavour)]:
            failed.append(f"{name}/{flavour}: not a typed failure")
        if not baseline and slack > args.max_slack:
            failed.append(f"{name}/{flavour}: slack {slack * 1e3:.0f} ms")
    print(f"goal: slack <= {args.max_slack * 1e3:.0f} ms; ", end="")
    print("met" if not failed else "MISSED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
