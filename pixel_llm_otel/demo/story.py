"""The demo's story: healthy -> transient errors -> outage -> recovery -> streaming.

Each phase sets the simulator's behaviour, makes its calls through one ``HybridPixelLLM`` and
records what every call got (source, attempts, latency, error, trace id) plus what the server saw
and the breaker's transitions. Rendering lives in :mod:`~pixel_llm_otel.demo.render`; this module
only runs things and keeps the facts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..resilience.circuit_breaker import CircuitBreakerConfig
from ..resilience.events import CircuitBreakerStateChange, ResilienceEvent
from ..resilience.fallback import FallbackConfig
from ..resilience.retry import RetryConfig

if TYPE_CHECKING:
    import torch

    from ..pipeline import GenerateResult, HybridPixelLLM
    from ..sim import SimulatorServer

__all__ = ["CallRecord", "DemoOptions", "PhaseReport", "StoryReport", "run_story"]

CHAT = "/v1/chat/completions"
DEFAULT_TEXT = "(caption unavailable: the LLM server is down)"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the command line asked for."""

    calls: int = 12  # calls per phase
    pace: float = 0.12  # seconds between calls, so the story can be watched
    cooldown: float = 30.0  # breaker cooldown (fast-forwarded by the story)
    seed: int = 7
    url: str | None = None  # a real server instead of the simulator
    model: str = "sim-model"
    device: str = "cpu"
    send_image: bool = False
    telemetry: bool = True
    quick: bool = False


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call's facts."""

    phase: str
    source: str | None
    attempts: int
    latency: float
    error_type: str | None
    trace_id: str | None
    breaker_before: str
    breaker_after: str
    ttfc: float | None = None  # streamed calls: seconds to the first chunk
    chunks: int = 0  # streamed calls: chunks received

    @property
    def rejected(self) -> bool:
        return self.error_type == "CircuitBreakerOpen"


@dataclass
class PhaseReport:
    """One phase: its calls, what reached the server, the breaker's moves."""

    name: str
    title: str
    calls: list[CallRecord] = field(default_factory=list)
    server_requests: int | None = 0  # None: unknown (a real server does not tell us)
    transitions: list[str] = field(default_factory=list)
    breaker_end: str = "closed"
    skipped: str | None = None  # why the phase did not run (real server mode)

    @property
    def llm(self) -> int:
        return sum(c.source == "llm" for c in self.calls)

    @property
    def retries(self) -> int:
        return sum(max(0, c.attempts - 1) for c in self.calls)

    @property
    def fallbacks(self) -> int:
        return sum(c.source not in ("llm", None) for c in self.calls)

    @property
    def failed(self) -> int:
        return sum(c.source is None for c in self.calls)

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.calls)

    def percentile(self, q: float) -> float | None:
        """Latency percentile in seconds (``None`` without calls)."""
        latencies = sorted(c.latency for c in self.calls)
        if not latencies:
            return None
        if len(latencies) == 1:
            return latencies[0]
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return cuts[min(98, max(0, round(q * 100) - 1))]

    def ttfc_percentile(self, q: float) -> float | None:
        """Time-to-first-chunk percentile in seconds (``None`` when no call streamed)."""
        values = sorted(c.ttfc for c in self.calls if c.ttfc is not None)
        if not values:
            return None
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def example(self) -> CallRecord | None:
        """The call that tells this phase's story best, for its trace tree.

        Transient: a call that succeeded after retries. Outage: the call that opened the
        breaker. Recovery: the probe that closed it. Otherwise the first call.
        """

        def interest(c: CallRecord) -> int:
            if self.name == "transient":
                return 2 * (c.attempts > 1) + (c.source == "llm")
            if self.name == "outage":
                return 2 * (c.breaker_before == "closed" and c.breaker_after == "open") + (
                    c.error_type == "RetryExhausted"
                )
            if self.name == "recovery":
                return 2 * (c.breaker_before != "closed" and c.breaker_after == "closed") + (
                    c.source == "llm"
                )
            return 0

        traced = [c for c in self.calls if c.trace_id]
        best = max((interest(c) for c in traced), default=0)
        return next((c for c in traced if interest(c) == best), None)


@dataclass
class StoryReport:
    phases: list[PhaseReport]
    checks: list[tuple[str, bool]]
    logs: str = ""
    simulated: bool = True

    @property
    def ok(self) -> bool:
        return all(passed for _, passed in self.checks)


class _Transitions:
    """Collects the breaker's state changes for the current phase."""

    def __init__(self) -> None:
        self.current: list[str] | None = None

    def on_event(self, event: ResilienceEvent) -> None:
        if isinstance(event, CircuitBreakerStateChange) and self.current is not None:
            self.current.append(f"{event.from_state}->{event.to_state} ({event.reason})")


def error_config(options: DemoOptions) -> dict[str, Any]:
    """Short timings so the whole story fits in well under a minute."""
    return {
        "retry": RetryConfig(
            max_attempts=3,
            initial_delay=0.02 if options.quick else 0.05,
            max_delay=0.1 if options.quick else 0.4,
            jitter=True,
            deadline=3.0,
        ),
        "circuit_breaker": CircuitBreakerConfig(
            failure_threshold=3, failure_rate_threshold=None, cooldown=options.cooldown
        ),
        "fallback": FallbackConfig(default_value=DEFAULT_TEXT),
    }


def demo_images(count: int = 4, size: int = 224) -> list[torch.Tensor]:
    """A few distinct synthetic pictures: a sunset gradient, a checkerboard, sky, noise..."""
    import torch

    g = torch.Generator().manual_seed(3)
    ramp = torch.linspace(0, 1, size)
    sunset = torch.stack(
        [
            ramp.flip(0)[:, None].expand(size, size),
            (ramp * 0.5)[:, None].expand(size, size),
            (ramp * 0.2)[None, :].expand(size, size),
        ]
    )
    squares = ((torch.arange(size)[:, None] // 28 + torch.arange(size)[None, :] // 28) % 2).float()
    checker = squares.expand(3, size, size)
    sky = torch.stack(
        [
            torch.full((size, size), 0.3),
            torch.full((size, size), 0.6),
            ramp[:, None].expand(size, size) * 0.4 + 0.6,
        ]
    )
    noise = torch.rand(3, size, size, generator=g)
    pictures = [sunset, checker, sky, noise]
    return [pictures[i % len(pictures)].contiguous() for i in range(count)]


Progress = Callable[[str, int], None]  # (description, calls done in this phase)


class StoryClock:
    """The pipeline's monotonic clock, which the story can fast-forward.

    The breaker's cooldown is a realistic 30 s; rather than wait it out (or shorten it until a
    slow machine lets it elapse mid-outage), the story skips it at the start of the recovery
    phase. Everything else (latencies, retry backoff) runs on real time.
    """

    def __init__(self, base: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self._offset = 0.0

    def __call__(self) -> float:
        return self._base() + self._offset

    def skip(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self._offset += max(0.0, seconds)


async def run_story(
    llm: HybridPixelLLM,
    sim: SimulatorServer | None,
    options: DemoOptions,
    progress: Progress,
    clock: StoryClock | None = None,
) -> StoryReport:
    """Run the phases; ``sim`` is ``None`` against a real server (fault phases skipped).

    With ``clock`` (the pipeline's clock) the breaker's cooldown is fast-forwarded instead of
    waited for."""
    images = demo_images()
    watcher = _Transitions()
    llm.circuit_breaker.subscribe(watcher)
    phases: list[PhaseReport] = []

    async def phase(
        name: str,
        title: str,
        before: Callable[[], Awaitable[None]] | None = None,
        *,
        wait_cooldown_after: int | None = None,
        streamed: bool = False,
    ) -> PhaseReport:
        report = PhaseReport(name, title)
        phases.append(report)
        watcher.current = report.transitions
        if before is not None:
            await before()
        seen_before = sim.stats().count(CHAT) if sim is not None else 0
        for i in range(options.calls):
            if wait_cooldown_after is not None and i == wait_cooldown_after:
                wait = llm.circuit_breaker.retry_after()
                if clock is not None:
                    progress(f"{title}: fast-forwarding the {wait:.0f}s breaker cooldown", i)
                    clock.skip(wait + 0.01)
                else:
                    progress(f"{title}: breaker cooling down ({wait:.1f}s)", i)
                    await asyncio.sleep(wait + 0.01)
            progress(title, i)
            state_before = llm.circuit_breaker.state.value
            image = images[i % len(images)]
            if streamed:
                report.calls.append(await _streamed(llm, image, title, i, progress, state_before))
            else:
                result = await llm.generate_result_async(image)
                report.calls.append(_record(name, result, state_before, llm))
            progress(title, i + 1)
            if options.pace:
                await asyncio.sleep(options.pace)
        report.server_requests = sim.stats().count(CHAT) - seen_before if sim is not None else None
        report.breaker_end = llm.circuit_breaker.state.value
        watcher.current = None
        return report

    await phase("healthy", "Healthy")
    if sim is None:
        for name, title in _FAULT_PHASES:
            phases.append(PhaseReport(name, title, skipped="needs the simulator (--url given)"))
        await phase("streaming", "Streaming", streamed=True)
        return StoryReport(
            phases,
            [
                ("every call answered by the LLM", phases[0].llm == len(phases[0].calls)),
                _streaming_check(phases[-1]),
            ],
            simulated=False,
        )

    async def transient() -> None:
        from ..sim import FaultKind, FaultSpec

        await sim.set_scenario(
            FaultSpec(
                name="transient",
                rates={
                    FaultKind.HTTP_503: 0.2,
                    FaultKind.HTTP_500: 0.05,
                    FaultKind.RATE_LIMIT: 0.05,
                    FaultKind.HANG: 0.03,
                },
                retry_after=0.1,
                hang_seconds=1.0,
            ),
            seed=options.seed,
        )
        sim.script(["503", "429"])  # the first two requests fail whatever the dice say

    async def outage() -> None:
        # Down, answering 503 to everything: unlike a refused connection the server counts
        # each request, so the table shows the open breaker stopping the traffic.
        await sim.set_scenario("healthy")
        await sim.start_outage(3600.0, "503")

    async def recovery() -> None:
        await sim.end_outage()

    async def streaming() -> None:
        from ..sim import FaultSpec

        # slow enough to watch the caption being written, word by word
        delay = 0.01 if options.quick else 0.04
        await sim.set_scenario(FaultSpec(name="streaming", stream_chunk_delay=delay))

    await phase("transient", "Transient errors", transient)
    await phase("outage", "Outage", outage)
    await phase("recovery", "Recovery", recovery, wait_cooldown_after=1)
    await phase("streaming", "Streaming", streaming, streamed=True)
    return StoryReport(phases, _checks(phases))


_FAULT_PHASES = (("transient", "Transient errors"), ("outage", "Outage"), ("recovery", "Recovery"))


async def _streamed(
    llm: HybridPixelLLM,
    image: torch.Tensor,
    title: str,
    done: int,
    progress: Progress,
    before: str,
) -> CallRecord:
    """One streamed caption; the progress line shows it growing chunk by chunk."""
    async with llm.stream_async(image) as stream:
        async for _ in stream:
            progress(f"{title}: {_tail(stream.text)}", done)
    result = stream.result
    assert result is not None
    error = result.error
    return CallRecord(
        phase="streaming",
        source=result.source,
        attempts=result.attempts,
        latency=result.latency,
        error_type=None if error is None else type(error).__name__,
        trace_id=result.trace_id,
        breaker_before=before,
        breaker_after=llm.circuit_breaker.state.value,
        ttfc=result.time_to_first_chunk,
        chunks=result.chunks,
    )


def _tail(text: str, width: int = 32) -> str:
    """The end of a caption being written, to fit the progress line."""
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def _streaming_check(streaming: PhaseReport) -> tuple[str, bool]:
    calls = streaming.calls
    return (
        "streaming: every caption arrived chunk by chunk, with its time to first chunk",
        bool(calls)
        and all(c.source == "llm" and c.chunks > 1 and c.ttfc is not None for c in calls),
    )


def _record(phase: str, result: GenerateResult, before: str, llm: HybridPixelLLM) -> CallRecord:
    error = result.error
    return CallRecord(
        phase=phase,
        source=result.source,
        attempts=result.attempts,
        latency=result.latency,
        error_type=None if error is None else type(error).__name__,
        trace_id=result.trace_id,
        breaker_before=before,
        breaker_after=llm.circuit_breaker.state.value,
    )


def _checks(phases: list[PhaseReport]) -> list[tuple[str, bool]]:
    healthy, transient, outage, recovery, streaming = phases
    opened = any("->open" in t for t in outage.transitions)
    rejected_calls = outage.rejected
    return [
        ("healthy: every call answered by the LLM", healthy.llm == len(healthy.calls)),
        (
            "transient: errors were retried and every call got an answer",
            transient.retries > 0 and transient.failed == 0,
        ),
        (
            "outage: the breaker opened and answers came from the fallback cache",
            opened
            and outage.fallbacks == len(outage.calls)
            and all(c.source == "cache" for c in outage.calls),
        ),
        (
            "outage: the open breaker stopped the traffic (rejected calls never reached it)",
            rejected_calls > 0 and outage.server_requests == sum(c.attempts for c in outage.calls),
        ),
        (
            "recovery: a half-open probe closed the breaker",
            any("half_open->closed" in t for t in recovery.transitions)
            and recovery.breaker_end == "closed",
        ),
        _streaming_check(streaming),
    ]
