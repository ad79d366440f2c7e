"""Where the uninstrumented pipeline's distance to plain aiohttp goes (issue 10, goals 3 and 6).

A diagnostic, not a goal: each promise the client and the pipeline keep is switched off in turn
(for the duration of its timed batch only), and the CPU per call it gives back is printed beside
the full path, in interleaved rounds against the same simulator. Nothing here is a supported
configuration: the switches reach into private attributes so the cost of each promise can be
read off one run.

    client, pre-encoded body     LMStudioClient._post_chat (what the pipeline calls per attempt)
      - read timer               no ``sock_read`` (aiohttp re-arms a timer per received chunk);
                                 the pipeline's default deadline already drops it (a read timer
                                 that cannot fire before the total one is not armed)
      - typed parse              ``json.loads`` only, no ChatCompletion (no shape checks)
      - secret scrub             the body is not searched for the key, Bearer tokens, passwords
      - bounded read             ``resp.read()``: no ``max_response_bytes`` accounting
    pre-encoded                  generate_encoded: breaker, retry, slots, deadline, fallback cache
      - breaker / retry          the call goes straight to the attempt
      - cache store              the caption is not remembered for the cache fallback
    generate (cheap encoder)     generate: input check, content digest, encoder seam
      - input check              ``check_images`` replaced by ``unsqueeze(0)``
      - content digest           a constant digest

The input check and the digest are also timed hot, in a tight loop, for contrast: on the event
loop, between the HTTP work, each torch call runs with cold caches and costs several times more.

    python benchmarks/bench_wire_gap.py            # ~3 min
    python benchmarks/bench_wire_gap.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import torch
from _common import MODEL, simulator
from _peer_calls import PROMPT, Worker, make_worker

BASE = "plain aiohttp, JSON per call"
Patch = Callable[[], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    patch: Patch | None = None
    full: str | None = None  # the case this one switches a promise off in


@contextlib.contextmanager
def swapped(target: Any, name: str, value: Any) -> Iterator[None]:
    """``target.name = value`` for the block."""
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


class _NoScrub:
    def bytes(self, value: bytes) -> bytes:
        return value

    def text(self, value: str) -> str:
        return value


class _NoBreaker:
    async def call_async(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        return await fn(*args, **kw)


class _NoRetry:
    def run_async_in_scope(self, fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        return fn()


async def _raw_read(resp: aiohttp.ClientResponse, *_: Any) -> bytes:
    return await resp.read()


def _json_only(raw: bytes, parse: Any, ctx: Any) -> Any:
    return json.loads(raw)


async def add_cases(worker: Worker, sim_url: str) -> list[Case]:
    """The switchable call kinds, built inside the worker's loop."""
    from _common import FixedEncoder

    from pixel_llm_otel.client import LMStudioClient
    from pixel_llm_otel.client import _async as client_module
    from pixel_llm_otel.client._payload import chat_request_body
    from pixel_llm_otel.monitoring import StructuredLogger
    from pixel_llm_otel.pipeline import AsyncHybridPixelLLM
    from pixel_llm_otel.pipeline import _async as pipeline_module
    from pixel_llm_otel.pipeline import _core as core_module
    from pixel_llm_otel.pipeline._prompt import build_messages

    client = LMStudioClient(sim_url, pool_limit=100)
    worker.closers.append(client.close)
    llm = AsyncHybridPixelLLM(
        lm_studio_url=sim_url,
        lm_studio_model=MODEL,
        encoder=FixedEncoder(),
        max_concurrency=64,
        logger=StructuredLogger("bench", level="ERROR", stream=io.StringIO()),
    )
    worker.closers.append(llm.aclose)
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
    encoded = await llm.encode(image)
    call = llm.config.call
    body = chat_request_body(
        build_messages(PROMPT, encoded.summary, ()),
        model=MODEL,
        max_tokens=call.max_tokens,
        temperature=call.temperature,
    )
    worker.kinds["client, pre-encoded body"] = lambda: client._post_chat(body, MODEL)
    worker.kinds["pre-encoded (own)"] = lambda: llm.generate_encoded(encoded, prompt=PROMPT)
    worker.kinds["generate (own)"] = lambda: llm.generate(image, prompt=PROMPT)
    core = llm._core
    no_read = aiohttp.ClientTimeout(total=client._timeout.total, sock_connect=5.0)
    digest = encoded.digest
    c, p, g = "client, pre-encoded body", "pre-encoded", "generate (cheap encoder)"
    return [
        Case(BASE, "plain-per-call"),
        Case(c, c),
        Case("  - read timer", c, lambda: swapped(client, "_timeout", no_read), c),
        Case("  - typed parse", c, lambda: swapped(client_module, "decode", _json_only), c),
        Case("  - secret scrub", c, lambda: swapped(client, "_scrub", _NoScrub()), c),
        Case("  - bounded read", c, lambda: swapped(client_module, "read_body", _raw_read), c),
        Case(p, "pre-encoded (own)"),
        Case("  - breaker", "pre-encoded (own)", lambda: swapped(core, "breaker", _NoBreaker()), p),
        Case("  - retry", "pre-encoded (own)", lambda: swapped(core, "retry", _NoRetry()), p),
        Case(
            "  - cache store",
            "pre-encoded (own)",
            lambda: swapped(core.fallback, "remember", lambda key, value: None),
            p,
        ),
        Case(g, "generate (own)"),
        Case(
            "  - input check",
            "generate (own)",
            lambda: swapped(pipeline_module, "check_images", lambda x: x.unsqueeze(0)),
            g,
        ),
        Case(
            "  - content digest",
            "generate (own)",
            lambda: swapped(core_module, "image_digests", lambda batch, per_image: [digest]),
            g,
        ),
    ]


def hot_us(fn: Callable[[], Any], number: int = 20_000) -> float:
    """Median µs per call of ``fn`` in a tight loop (its code and data stay in the caches)."""
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(samples)


def _m(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    rounds, calls = (3, 300) if args.quick else (7, 1500)
    conc = args.concurrency
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load {load}; {rounds} interleaved rounds x {calls} calls, "
          f"c={conc}; CPU = process CPU per call")  # fmt: skip
    with simulator(0.0) as sim_url:
        worker = make_worker("none", sim_url)
        try:
            cases = worker.loop.run_until_complete(add_cases(worker, sim_url))
            cpu, rate = run(worker, cases, rounds, calls, conc)
        finally:
            for close in worker.closers:
                worker.loop.run_until_complete(close())
    report(cases, cpu, rate)
    hot_contrast(cases, cpu)
    return 0


def run(
    worker: Worker, cases: list[Case], rounds: int, calls: int, conc: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    def timed(case: Case, count: int) -> tuple[float, float]:
        with case.patch() if case.patch else contextlib.nullcontext():
            return worker.timed(case.kind, count, conc)

    for case in cases:  # every switch still gets the server's caption, then warm-up
        with case.patch() if case.patch else contextlib.nullcontext():
            check(case, worker.loop.run_until_complete(worker.kinds[case.kind]()))
        timed(case, max(64, calls // 5))
    cpu: dict[str, list[float]] = {}
    rate: dict[str, list[float]] = {}
    for index in range(rounds):
        shift = index % len(cases)
        for case in cases[shift:] + cases[:shift]:
            wall, used = timed(case, calls)
            cpu.setdefault(case.name, []).append(used / calls * 1e6)
            rate.setdefault(case.name, []).append(calls / wall)
    if worker.failures:
        print(f"warning: {worker.failures} failed calls (the simulator should be healthy)")
    return cpu, rate


def check(case: Case, result: Any) -> None:
    """A switch that broke the call (the internals it reaches into moved) must not be timed:
    a fallback or an error would be measured instead of the promise it switches off."""
    source = getattr(result, "source", "llm")
    if result is None or source != "llm" or getattr(result, "error", None) is not None:
        raise SystemExit(f"{case.name.strip()}: the call did not reach the server: {result!r}")


def report(cases: list[Case], cpu: dict[str, list[float]], rate: dict[str, list[float]]) -> None:
    print(f"\nmedian (min..max) over rounds; ratio = calls/s vs {BASE!r}, per round; "
          "given back = CPU us/call the switch saves, per round")  # fmt: skip
    print(f"{'case':<28}{'CPU us/call':>20}{'ratio':>22}{'given back':>20}")
    for case in cases:
        ratio = [a / b for a, b in zip(rate[case.name], rate[BASE], strict=True)]
        saved = ""
        if case.full is not None:
            saved = _m([f - x for f, x in zip(cpu[case.full], cpu[case.name], strict=True)], "+.1f")
        print(f"{case.name:<28}{_m(cpu[case.name], '.0f'):>20}{_m(ratio, '.3f'):>22}{saved:>20}")


def hot_contrast(cases: list[Case], cpu: dict[str, list[float]]) -> None:
    from pixel_llm_otel.pipeline._cache_key import image_digests
    from pixel_llm_otel.pipeline._prompt import check_images

    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
    batch = check_images(image)
    full = "generate (cheap encoder)"
    print("\nthe same steps hot (a tight loop) vs on the loop (the CPU their switch gives back):")
    for label, name, fn in (
        ("input check", "  - input check", lambda: check_images(image)),
        ("content digest", "  - content digest", lambda: image_digests(batch, False)),
    ):
        loop = [f - x for f, x in zip(cpu[full], cpu[name], strict=True)]
        print(
            f"  {label:<16} hot {hot_us(fn):5.1f} us, on the loop {statistics.median(loop):5.1f} us"
        )


if __name__ == "__main__":
    sys.exit(main())
