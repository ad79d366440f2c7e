"""Streams and the breaker's half-open probe; the blocking facade; streams open at exit."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from opentelemetry.trace import StatusCode
from stream_support import (
    CHAT_SPAN,
    LONG,
    Captured,
    connections_in_use,
    errors,
)

from pixel_llm_otel.errors import StreamInterrupted
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.resilience import CircuitState
from pixel_llm_otel.sim import FaultSpec, ManualClock, SimulatorServer

GENERATE = "pixel_llm.generate"


async def _half_open(
    make_llm: Callable[..., HybridPixelLLM], sim: SimulatorServer, image: torch.Tensor
) -> tuple[HybridPixelLLM, ManualClock]:
    """A pipeline whose breaker opened on one failure and is now half-open."""
    clock = ManualClock()
    llm = make_llm(error_config=errors(attempts=1, threshold=1), clock=clock)
    sim.script(["503"])
    async with llm.stream_async(image) as opened:
        assert [c async for c in opened] == []
    assert llm.circuit_breaker.state is CircuitState.OPEN
    clock.advance(31)
    assert llm.circuit_breaker.state is CircuitState.HALF_OPEN
    return llm, clock


async def test_probe_closed_early_releases_the_slot(
    make_llm: Callable[..., HybridPixelLLM], sim: SimulatorServer, image: torch.Tensor
) -> None:
    """A half-open probe the caller closes frees its slot, counts nothing; the next one closes."""
    llm, _ = await _half_open(make_llm, sim, image)
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    async with llm.stream_async(image) as probe:
        async for _ in probe:
            assert llm.circuit_breaker.snapshot().half_open_in_flight == 1
            break
    snap = llm.circuit_breaker.snapshot()
    assert (snap.state, snap.half_open_in_flight) == (CircuitState.HALF_OPEN, 0)
    async with llm.stream_async(image) as second:
        assert "".join([c async for c in second])
    assert llm.circuit_breaker.state is CircuitState.CLOSED
    assert connections_in_use(llm) == 0


async def test_probe_interrupted_reopens(
    make_llm: Callable[..., HybridPixelLLM], sim: SimulatorServer, image: torch.Tensor
) -> None:
    """A half-open probe interrupted mid-way is a failure: the breaker opens again."""
    llm, _ = await _half_open(make_llm, sim, image)
    await sim.set_scenario(FaultSpec(stream_chunk_delay=0.02))  # words read before the reset
    sim.script([{"kind": "stream_reset", "after": 3}])
    with pytest.raises(StreamInterrupted):
        async with llm.stream_async(image) as probe:
            async for _ in probe:
                pass
    snap = llm.circuit_breaker.snapshot()
    assert (snap.state, snap.half_open_in_flight) == (CircuitState.OPEN, 0)


async def test_probe_abandoned_releases_the_slot(
    make_llm: Callable[..., HybridPixelLLM], sim: SimulatorServer, image: torch.Tensor
) -> None:
    """A half-open probe dropped to the garbage collector frees its slot without counting."""
    llm, _ = await _half_open(make_llm, sim, image)
    sim.script([{"kind": "stream_stall", "after": 3, "seconds": LONG}])
    probe = llm.stream_async(image)
    await probe.__anext__()
    del probe
    gc.collect()
    snap = llm.circuit_breaker.snapshot()
    assert (snap.state, snap.half_open_in_flight) == (CircuitState.HALF_OPEN, 0)


def test_sync_facade_completes_and_closes(
    make_sync_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured: Captured
) -> None:
    """``with stream(...)`` / ``for``: chunks on the loop thread, then a complete result."""
    llm = make_sync_llm()
    with llm.stream(image) as s:
        chunks = list(s)
    assert s.result is not None
    assert (s.result.end, s.result.text) == ("completed", "".join(chunks))
    with llm.stream(image) as s:
        for _ in s:
            break
    assert s.result is not None
    assert s.result.end == "closed"
    ends = [span.attributes["pixel_llm.stream.end"] for span in captured.spans(CHAT_SPAN)]
    assert ends == ["completed", "closed"]
    assert captured.warnings == []


def test_sync_facade_dropped_is_abandoned(
    make_sync_llm: Callable[..., HybridPixelLLM], image: torch.Tensor, captured: Captured
) -> None:
    """A blocking stream dropped after one chunk is ended by the GC as abandoned."""
    llm = make_sync_llm()
    s = llm.stream(image)
    next(s)
    del s
    gc.collect()
    (chat,) = captured.spans(CHAT_SPAN)
    assert chat.attributes["pixel_llm.stream.end"] == "abandoned"
    assert chat.status.status_code is StatusCode.UNSET


SCRIPT = textwrap.dedent(
    """
    import asyncio, atexit, json, sys
    sys.path.insert(0, {support!r})
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from pixel_llm_otel.telemetry import PixelLLMInstrumentor
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    PixelLLMInstrumentor().instrument(tracer_provider=provider, instrument_http=False)

    def report():  # registered first, so it runs after the streams' own exit hook
        spans = [{{"name": s.name, "end": dict(s.attributes).get("pixel_llm.stream.end")}}
                 for s in exporter.get_finished_spans()]
        print(json.dumps(spans), flush=True)

    atexit.register(report)
    import torch
    from stream_support import FakeEncoder
    from pixel_llm_otel.pipeline import HybridPixelLLM
    from pixel_llm_otel.sim.thread import SimulatorThread
    sim = SimulatorThread(port=0, seed=1)
    sim.start()
    sim.script([{{"kind": "stream_stall", "after": 3, "seconds": 30}}])
    llm = HybridPixelLLM(sim.base_url, lm_studio_model="sim-model", encoder=FakeEncoder())
    KEEP = llm.stream(torch.rand(3, 8, 8))
    print(next(KEEP), flush=True)  # then exit with the stream still open
    """
)


def test_stream_open_at_interpreter_exit_is_ended(tmp_path: Path) -> None:
    """A stream still open when the interpreter exits has both spans ended (abandoned)."""
    support = str(Path(__file__).parent)
    script = tmp_path / "exit_with_open_stream.py"
    script.write_text(SCRIPT.format(support=support))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    spans = json.loads(lines[-1])
    assert {"name": CHAT_SPAN, "end": "abandoned"} in spans
    assert sum(s["name"] == GENERATE for s in spans) == 1
