"""Streamed tokens/s through the pipeline (telemetry off and on) vs plain aiohttp, same SSE stream.

The server runs in its own process and answers every request with the same recorded SSE stream:
the simulator's answer with its word chunks repeated to ``--tokens`` content chunks, sent as one
HTTP chunk per event in a single write, so the client side is what is measured (the simulator
itself writes chunk by chunk and would be the bottleneck). Each mode reads the same number of
streams, ``concurrency`` at a time, and counts the content chunks (one word = one token):

- plain: one aiohttp session; per stream, POST the same body the pipeline sends (stream=true,
  include_usage), split the SSE lines, ``json.loads`` each event, stop at ``[DONE]``;
- pipeline, telemetry off: ``llm.stream_async(image)`` (the pipeline's streaming path: argument
  checks, a stand-in encoder and the image digest, breaker permit, retry until the first chunk,
  the client's typed stream reader with idle timeout and deadline, result and cache), no-op
  observer;
- pipeline, telemetry on: the same with ``PixelLLMInstrumentor`` on an SDK tracer provider (spans
  recorded, no exporter) and meter provider (TTFC, time per chunk, duration, requests).

Rounds interleave the modes; the table shows the median tokens/s with min-max over the rounds,
client CPU per stream (``process_time``), and the ratios against plain measured in the same run.
Goals: pipeline (telemetry off) >= 0.5 x plain; telemetry on >= 0.5 x telemetry off. Exits 1
when one is missed. With telemetry on, most of the extra cost is the SDK recording one
``gen_ai.client.operation.time_per_output_chunk`` point per chunk (semconv asks for a point per
chunk after the first), about as much per chunk as everything else the pipeline does.

    python benchmarks/bench_stream.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import torch

from pixel_llm_otel.client._payload import build_chat_payload, encode_json
from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import DEFAULT_PROMPT, HybridPixelLLM
from pixel_llm_otel.pipeline._prompt import build_messages

MODEL = "sim-model"
GOAL_PIPELINE = 0.5
GOAL_TELEMETRY = 0.5


class StandInEncoder:
    """Per-channel means as features: the encoder's cost is not what this measures."""

    device = "cpu"

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["mean rgb " + ", ".join(f"{v:.2f}" for v in row.tolist()) for row in features]


def recorded_stream(tokens: int) -> bytes:
    """The simulator's SSE answer, its content chunks repeated to ``tokens`` of them."""
    from pixel_llm_otel.sim import openai_shapes as shapes

    chat = shapes.parse_chat_request(
        {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True,
         "stream_options": {"include_usage": True}}
    )  # fmt: skip
    chunks = shapes.stream_chunks(chat)
    head, words, tail = chunks[:1], chunks[1:-2], chunks[-2:]
    body = head + [words[i % len(words)] for i in range(tokens)] + tail
    return b"".join(shapes.sse(c) for c in body) + shapes.sse("[DONE]")


async def serve(tokens: int) -> None:
    """A keep-alive HTTP/1.1 server answering every POST with the recorded stream."""
    events = recorded_stream(tokens).split(b"\n\n")[:-1]
    payload = b"".join(b"%x\r\n%s\n\n\r\n" % (len(e) + 2, e) for e in events) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(head + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def start_server(tokens: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(tokens)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"server did not start: {url!r}")
    return proc, url


async def measure(
    concurrency: int, streams: int, one: Callable[[], Awaitable[int]]
) -> tuple[float, float]:
    """(tokens per second, client CPU seconds per stream) for ``streams`` calls of ``one``."""
    gc.collect()
    remaining = streams
    tokens = 0

    async def worker() -> None:
        nonlocal remaining, tokens
        while remaining > 0:
            remaining -= 1
            tokens += await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return tokens / wall, cpu / streams


def instrument() -> Callable[[], None]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from pixel_llm_otel.telemetry import PixelLLMInstrumentor

    instrumentor = PixelLLMInstrumentor()
    instrumentor.instrument(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        instrument_http=False,
    )
    return instrumentor.uninstrument


async def bench(url: str, concurrency: int, streams: int, rounds: int) -> int:
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    llm = HybridPixelLLM(
        url,
        MODEL,
        encoder=StandInEncoder(),
        max_concurrency=max(16, concurrency),
        logger=StructuredLogger("bench", stream=io.StringIO()),
    )
    summary = StandInEncoder().summarize(image.unsqueeze(0).mean(dim=(2, 3)))[0]
    body = encode_json(
        build_chat_payload(
            build_messages(DEFAULT_PROMPT, summary),
            model=MODEL,
            max_tokens=256,
            temperature=0.7,
            stream=True,
            extra=None,
        )
    )
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    gc.collect()
    gc.freeze()  # torch's long-lived objects: not walked by every full collection
    connector = aiohttp.TCPConnector(limit=max(100, concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def plain() -> int:
            tokens = 0
            async with session.post(f"{url}/chat/completions", data=body, headers=headers) as r:
                r.raise_for_status()
                async for raw in r.content:
                    line = raw.strip()
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:]
                    if data == b"[DONE]":
                        break
                    event = json.loads(data)
                    for choice in event["choices"]:
                        if choice["delta"].get("content"):
                            tokens += 1
            return tokens

        async def pipeline() -> int:
            stream = llm.stream_async(image)
            tokens = 0
            async with stream:
                async for _ in stream:
                    tokens += 1
            assert stream.result is not None
            assert stream.result.end == "completed", stream.result
            return tokens

        modes: dict[str, list[tuple[float, float]]] = {"plain": [], "off": [], "on": []}
        for mode in modes:  # warm-up
            await run_mode(mode, concurrency, min(streams, 20), plain, pipeline)
        for _ in range(rounds):
            for mode in modes:
                modes[mode].append(await run_mode(mode, concurrency, streams, plain, pipeline))
    await llm.aclose()
    return report(modes, concurrency, streams, rounds)


async def run_mode(
    mode: str,
    concurrency: int,
    streams: int,
    plain: Callable[[], Awaitable[int]],
    pipeline: Callable[[], Awaitable[int]],
) -> tuple[float, float]:
    if mode == "plain":
        return await measure(concurrency, streams, plain)
    if mode == "off":
        return await measure(concurrency, streams, pipeline)
    undo = instrument()
    try:
        return await measure(concurrency, streams, pipeline)
    finally:
        undo()


def report(
    modes: dict[str, list[tuple[float, float]]], concurrency: int, streams: int, rounds: int
) -> int:
    def med(mode: str) -> float:
        return statistics.median(r[0] for r in modes[mode])

    names = {
        "plain": "plain aiohttp",
        "off": "pipeline, telemetry off",
        "on": "pipeline, telemetry on",
    }
    print(
        f"concurrency {concurrency}, {streams} streams per round, {rounds} interleaved rounds "
        "(client CPU per stream: process_time of this process)"
    )
    print(f"{'mode':26} {'tokens/s median':>16} {'min-max':>17} {'CPU/stream':>11} {'vs plain':>9}")
    for mode, rows in modes.items():
        rates = [r[0] for r in rows]
        cpu = statistics.median(r[1] for r in rows) * 1e3
        print(
            f"{names[mode]:26} {med(mode):16,.0f} {min(rates):8,.0f}-{max(rates):<8,.0f} "
            f"{cpu:8.2f} ms {med(mode) / med('plain'):8.2f}x"
        )
    pipeline_ratio = med("off") / med("plain")
    telemetry_ratio = med("on") / med("off")
    print(f"pipeline/plain {pipeline_ratio:.2f} (goal >= {GOAL_PIPELINE}); "
          f"telemetry on/off {telemetry_ratio:.2f} (goal >= {GOAL_TELEMETRY})")  # fmt: skip
    return 0 if pipeline_ratio >= GOAL_PIPELINE and telemetry_ratio >= GOAL_TELEMETRY else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer streams and rounds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=200, help="content chunks per stream")
    parser.add_argument("--serve", type=int, metavar="TOKENS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    streams, rounds = (40, 3) if args.quick else (120, 7)
    proc, url = start_server(args.tokens)
    try:
        code = asyncio.run(bench(url, args.concurrency, streams, rounds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
