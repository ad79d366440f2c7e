"""Cost of one HTTP attempt span: ours (the client's trace config) vs generic aiohttp hooks.

Before issue 12 the ``POST`` spans came from opentelemetry-instrumentation-aiohttp-client with our
request hook; now the client reports each attempt and we make the span ourselves (and suppress
the host's aiohttp instrumentation for it). Variants, one process, interleaved rounds (the order
rotates each round), each round a fresh client session so each variant's trace configs apply:

    off       no instrumentation at all (the client's trace config finds no observer)
    generic   the aiohttp-client instrumentation with our old resend-count request hook
    ours      PixelLLMInstrumentor's HTTP attempt spans
    both      ours plus the host's aiohttp-client instrumentation (suppressed for our requests)

Spans go to an SDK tracer provider with a no-op processor, so what is measured is the span work in
the request path, not export. Each call is one ``LMStudioClient.chat`` against a loopback aiohttp
server. Reported: calls/s, process CPU per call, and the CPU overhead vs ``off`` as the median
(min..max) over rounds of per-round differences; exit status 1 when ``ours`` costs more than
``generic`` (the goal: making the span ourselves is no dearer than the generic hooks).

    python benchmarks/bench_http_spans.py            # 9 rounds x 1,500 calls
    python benchmarks/bench_http_spans.py --quick    # 5 rounds x 300 calls
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.telemetry import PixelLLMInstrumentor
from pixel_llm_otel.telemetry._http import _current_attempt, url_filter

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
VARIANTS = ("off", "generic", "ours", "both")


def _resend_hook(span: Any, _params: Any) -> None:
    """The request hook we gave the aiohttp instrumentation before: the resend count only."""
    attempt = _current_attempt()
    if attempt > 1 and span is not None and span.is_recording():
        span.set_attribute("http.request.resend_count", attempt - 1)


class _Nothing(SpanProcessor):
    """Accepts every span and does nothing: span work without export."""


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(_Nothing())
    return provider


def _enable(variant: str, provider: TracerProvider) -> Callable[[], None]:
    """Instrument for ``variant``; returns the undo."""
    ours = variant in ("ours", "both")
    host = variant in ("generic", "both")
    if host:
        hooks: dict[str, Any] = {"url_filter": url_filter}
        if variant == "generic":
            hooks["request_hook"] = _resend_hook
        AioHttpClientInstrumentor().instrument(
            tracer_provider=provider, meter_provider=NoOpMeterProvider(), **hooks
        )
    if ours:
        PixelLLMInstrumentor().instrument(
            tracer_provider=provider, meter_provider=NoOpMeterProvider()
        )

    def undo() -> None:
        if ours:
            PixelLLMInstrumentor().uninstrument()
        if host:
            AioHttpClientInstrumentor().uninstrument()

    return undo


async def _round(
    url: str, variant: str, calls: int, provider: TracerProvider
) -> tuple[float, float]:
    undo = _enable(variant, provider)
    try:
        async with LMStudioClient(url) as client:
            messages = [{"role": "user", "content": "hi"}]
            await client.chat(messages, model="m")  # the session, with this variant's configs
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await client.chat(messages, model="m")
            return time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        undo()


async def _serve() -> tuple[web.AppRunner, str]:
    async def handle(_request: web.Request) -> web.Response:
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"


async def run(rounds: int, calls: int) -> int:
    runner, url = await _serve()
    provider = _provider()
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    rate: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for variant in VARIANTS:  # warm-up
            await _round(url, variant, max(50, calls // 5), provider)
        for index in range(rounds):
            order = VARIANTS[index % 4 :] + VARIANTS[: index % 4]
            for variant in order:
                wall, used = await _round(url, variant, calls, provider)
                cpu[variant].append(used / calls * 1e6)
                rate[variant].append(calls / wall)
            print(f"  round {index + 1}/{rounds}: " + "  ".join(
                f"{v} {cpu[v][-1]:6.1f}us" for v in VARIANTS), flush=True)  # fmt: skip
    finally:
        await runner.cleanup()

    def extra(variant: str) -> list[float]:
        return [a - b for a, b in zip(cpu[variant], cpu["off"], strict=True)]

    print(f"\n{'variant':<9}{'calls/s':>10}{'CPU us/call':>13}{'+CPU us vs off (min..max)':>30}")
    for variant in VARIANTS:
        over = extra(variant)
        print(f"{variant:<9}{statistics.median(rate[variant]):>10.0f}"
              f"{statistics.median(cpu[variant]):>13.1f}"
              f"{statistics.median(over):>14.1f} ({min(over):.1f}..{max(over):.1f})")  # fmt: skip
    ratio = [o / g for o, g in zip(extra("ours"), extra("generic"), strict=True) if g > 0]
    ours, generic = statistics.median(extra("ours")), statistics.median(extra("generic"))
    ok = ours <= generic
    spread = f"{min(ratio):.2f}..{max(ratio):.2f}" if ratio else "n/a"
    print(f"\nours / generic span overhead: {ours / generic if generic > 0 else float('nan'):.2f} "
          f"(per round {spread}) -> {'PASS' if ok else 'MISS'}: goal ours <= generic")  # fmt: skip
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 9)
    calls = args.calls or (300 if args.quick else 1500)
    return asyncio.run(run(rounds, calls))


if __name__ == "__main__":
    sys.exit(main())
