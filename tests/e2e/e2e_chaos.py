"""The chaos run of the end-to-end suite: HybridPixelLLM (real encoder, real HTTP client) against
the simulator, scripted so every kind of event happens at least once, then the simulator's
seeded `chaos` scenario for a while. Telemetry is whatever configure() made of OTEL_* variables.

Story (pipeline `main`: breaker opens on 1 failure, cache then default fallback; `strict`: no
fallback; `chaos`: breaker opens on 3 failures):
    success     main, image A: one attempt (caches A)
    retried     main, image B: 503 then ok -> two POSTs, one pixel_llm.retry event
    exhausted   main, image A: 503 x3 -> RetryExhausted, breaker closed -> open, cache serves
    rejected    main, image C: breaker open -> rejected, cache empty, default serves
    probe       main, image D after the cooldown: open -> half_open -> closed, llm answers
    error       strict: 503 x3 -> RetryExhausted reaches the caller (outcome error)
    malformed   strict: 200 with malformed JSON x3 -> RetryExhausted, outcome error
    stream      strict, streamed: completed chunk by chunk (time to first chunk, time per chunk)
    stream-cut  strict, streamed: reset after three words -> StreamInterrupted, outcome error
    chaos-N     chaos: the seeded `chaos` scenario (5xx, 429, hangs, resets, bad bodies, latency)
    stream-end, stream-cut-end: the two streamed steps again, so the streaming panels' rates see
                their counts grow within the last minute
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from e2e_support import MODEL

from pixel_llm_otel.errors import StreamInterrupted
from pixel_llm_otel.pipeline import ErrorConfig, GenerateResult, HybridPixelLLM, StreamResult
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreakerConfig
from pixel_llm_otel.resilience.fallback import FallbackConfig
from pixel_llm_otel.resilience.retry import RetryConfig
from pixel_llm_otel.sim import FaultSpec, ManualClock, RequestRecord, SimulatorThread

COOLDOWN = 5.0  # seconds on the main pipeline's manual clock
CHAOS_CALLS = 12
CHAOS_SEED = 20240607


@dataclass
class ChaosRun:
    """What the chaos run did, for the tests to compare with what the backends stored."""

    service: str
    prompt: str
    api_key: str
    results: dict[str, GenerateResult | StreamResult] = field(default_factory=dict)
    requests: tuple[RequestRecord, ...] = ()
    started_at: float = 0.0
    finished_at: float = 0.0

    def trace_id(self, step: str) -> str:
        trace_id = self.results[step].trace_id
        assert trace_id, f"step {step} has no trace id (telemetry off?)"
        return trace_id

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results.values())

    @property
    def calls(self) -> int:
        return len(self.results)


def _retry(attempts: int) -> RetryConfig:
    return RetryConfig(
        max_attempts=attempts, initial_delay=0.01, max_delay=0.05, jitter=False, deadline=10.0
    )


def _image(seed: int) -> torch.Tensor:
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _streamed(llm: HybridPixelLLM, image: torch.Tensor, prompt: str) -> StreamResult:
    """Read a streamed caption to its end (an interruption is part of the story)."""
    with llm.stream(image, prompt) as stream:
        try:
            for _ in stream:
                pass
        except StreamInterrupted:
            pass
    assert stream.result is not None
    return stream.result


def _stream_steps(
    run: ChaosRun, sim: SimulatorThread, llm: HybridPixelLLM, prompt: str, suffix: str
) -> None:
    """A streamed caption to completion, then one reset after three words."""
    sim.set_scenario("healthy")
    run.results[f"stream{suffix}"] = _streamed(llm, _image(7), prompt)
    # paced, so the words before the reset are read first (a reset discards unread bytes)
    sim.set_scenario(FaultSpec(name="paced", stream_chunk_delay=0.05))
    sim.script([{"kind": "stream_reset", "after": 4}])
    run.results[f"stream-cut{suffix}"] = _streamed(llm, _image(8), prompt)


def run_chaos(sim: SimulatorThread, service: str, prompt: str, api_key: str) -> ChaosRun:
    """Run the story; the caller configured telemetry and flushes it afterwards."""
    run = ChaosRun(service=service, prompt=prompt, api_key=api_key, started_at=time.time())
    clock = ManualClock()
    common: dict[str, Any] = {
        "device": "cpu",
        "api_key": api_key,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "total_timeout": 3.0,
    }
    main = HybridPixelLLM(
        sim.base_url,
        MODEL,
        error_config=ErrorConfig(
            retry=_retry(3),
            circuit_breaker=CircuitBreakerConfig(
                failure_threshold=1, failure_rate_threshold=None, cooldown=COOLDOWN
            ),
            fallback=FallbackConfig(order=("cache", "default"), default_value="(no caption)"),
        ),
        breaker_name="e2e-main",
        clock=clock,
        **common,
    )
    strict = HybridPixelLLM(
        sim.base_url,
        MODEL,
        error_config=ErrorConfig(
            retry=_retry(3),
            circuit_breaker=CircuitBreakerConfig(failure_threshold=50, failure_rate_threshold=None),
            fallback=FallbackConfig(enabled=False),
        ),
        breaker_name="e2e-strict",
        encoder=main.encoder,
        **common,
    )
    chaos = HybridPixelLLM(
        sim.base_url,
        MODEL,
        error_config=ErrorConfig(
            retry=_retry(3),
            circuit_breaker=CircuitBreakerConfig(
                failure_threshold=3, failure_rate_threshold=None, cooldown=0.5
            ),
            fallback=FallbackConfig(order=("cache", "default"), default_value="(no caption)"),
        ),
        breaker_name="e2e-chaos",
        encoder=main.encoder,
        **common,
    )
    try:
        sim.set_scenario("healthy")
        run.results["success"] = main.generate_result(_image(1), prompt)
        sim.script(["503", "ok"])
        run.results["retried"] = main.generate_result(_image(2), prompt)
        sim.script(["503", "503", "503"])
        run.results["exhausted"] = main.generate_result(_image(1), prompt)
        run.results["rejected"] = main.generate_result(_image(3), prompt)
        clock.advance(COOLDOWN + 0.1)  # the cooldown passes on the breaker's own clock
        sim.script(["ok"])
        run.results["probe"] = main.generate_result(_image(4), prompt)
        sim.script(["503", "503", "503"])
        run.results["error"] = strict.generate_result(_image(5), prompt)
        sim.script(["malformed_json"] * 3)
        run.results["malformed"] = strict.generate_result(_image(6), prompt)
        _stream_steps(run, sim, strict, prompt, "")
        sim.set_scenario("chaos", seed=CHAOS_SEED)
        for i in range(CHAOS_CALLS):
            run.results[f"chaos-{i}"] = chaos.generate_result(_image(100 + i % 4), prompt)
        sim.set_scenario("healthy")
        run.results["healthy-end"] = main.generate_result(_image(1), prompt)
        # once more at the end: the panels' rate windows (1m) must see the counts grow
        _stream_steps(run, sim, strict, prompt, "-end")
        run.requests = sim.requests()
    finally:
        for llm in (chaos, strict, main):
            llm.close()
    run.finished_at = time.time()
    return run
