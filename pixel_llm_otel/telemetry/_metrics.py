"""The package's metric instruments, created once per meter with the semconv bucket advice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation

from . import _names as n
from ._errors import describe, mark_counted
from ._safety import guard

__all__ = ["ComingInstruments", "Instruments", "register_breaker_gauge", "set_breaker_source"]


@dataclass(frozen=True, slots=True)
class ComingInstruments:
    """The conventions' coming inference instruments (created only when opted in)."""

    duration: Histogram
    input_tokens: Counter
    output_tokens: Counter
    cache_read_tokens: Counter
    reasoning_tokens: Counter
    # streamed calls (recorded by the streaming observer beside the current TTFC / TPOC names)
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram

    @classmethod
    def create(cls, meter: Meter) -> ComingInstruments:
        def tokens(name: str, what: str) -> Counter:
            return meter.create_counter(name, unit="{token}", description=f"{what} tokens used.")

        return cls(
            duration=meter.create_histogram(
                n.METRIC_INFERENCE_DURATION,
                unit="s",
                description="GenAI inference operation duration.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
            input_tokens=tokens(n.METRIC_INFERENCE_INPUT_TOKENS, "Input"),
            output_tokens=tokens(n.METRIC_INFERENCE_OUTPUT_TOKENS, "Output"),
            cache_read_tokens=tokens(n.METRIC_INFERENCE_CACHE_READ_TOKENS, "Cached input"),
            reasoning_tokens=tokens(n.METRIC_INFERENCE_REASONING_TOKENS, "Reasoning output"),
            time_to_first_chunk=meter.create_histogram(
                n.METRIC_INFERENCE_TTFC,
                unit="s",
                description="Time to the first chunk of a streamed inference response.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
            time_per_output_chunk=meter.create_histogram(
                n.METRIC_INFERENCE_TPOC,
                unit="s",
                description="Time between chunks of a streamed inference response.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
        )


@dataclass(frozen=True, slots=True)
class Instruments:
    """Every instrument of the telemetry contract (the breaker state gauge is registered apart)."""

    operation_duration: Histogram
    token_usage: Histogram
    generate_requests: Counter
    generate_duration: Histogram
    retry_attempts: Counter
    retry_exhausted: Counter
    breaker_transitions: Counter
    breaker_rejected: Counter
    fallback_invocations: Counter
    errors: Counter
    encoder_duration: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    coming: ComingInstruments | None = None

    @classmethod
    def create(cls, meter: Meter, *, coming: bool = False) -> Instruments:
        """Create the instruments on ``meter``; histograms carry explicit bucket advice.

        ``coming``: also the conventions' coming inference instruments.
        """
        return cls(
            coming=ComingInstruments.create(meter) if coming else None,
            operation_duration=meter.create_histogram(
                n.METRIC_OPERATION_DURATION,
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
            token_usage=meter.create_histogram(
                n.METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=[float(b) for b in n.TOKEN_USAGE_BUCKETS],
            ),
            generate_requests=meter.create_counter(
                n.METRIC_GENERATE_REQUESTS,
                unit="{request}",
                description="Generate calls by the outcome the caller got.",
            ),
            generate_duration=meter.create_histogram(
                n.METRIC_GENERATE_DURATION,
                unit="s",
                description="Duration of generate calls, encoder and fallbacks included.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
            retry_attempts=meter.create_counter(
                n.METRIC_RETRY_ATTEMPTS,
                unit="{retry}",
                description="Failed attempts that were retried.",
            ),
            retry_exhausted=meter.create_counter(
                n.METRIC_RETRY_EXHAUSTED,
                unit="{call}",
                description="Calls the retry policy gave up on.",
            ),
            breaker_transitions=meter.create_counter(
                n.METRIC_BREAKER_TRANSITIONS,
                unit="{transition}",
                description="Circuit breaker state transitions.",
            ),
            breaker_rejected=meter.create_counter(
                n.METRIC_BREAKER_REJECTED,
                unit="{call}",
                description="Calls refused by a circuit breaker without being attempted.",
            ),
            fallback_invocations=meter.create_counter(
                n.METRIC_FALLBACK_INVOCATIONS,
                unit="{call}",
                description="Fallback strategies tried, by strategy and result.",
            ),
            errors=meter.create_counter(
                n.METRIC_ERRORS,
                unit="{error}",
                description="Classified errors, retried ones included.",
            ),
            encoder_duration=meter.create_histogram(
                n.METRIC_ENCODER_DURATION,
                unit="s",
                description="Duration of one vision encoder pass.",
                explicit_bucket_boundaries_advisory=list(n.ENCODER_DURATION_BUCKETS),
            ),
            # streamed calls; semconv gives both the operation-duration boundaries
            time_to_first_chunk=meter.create_histogram(
                n.METRIC_TIME_TO_FIRST_CHUNK,
                unit="s",
                description="Time to receive the first chunk of a streamed response.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
            time_per_output_chunk=meter.create_histogram(
                n.METRIC_TIME_PER_OUTPUT_CHUNK,
                unit="s",
                description="Time per output chunk after the first, end to end.",
                explicit_bucket_boundaries_advisory=list(n.OPERATION_DURATION_BUCKETS),
            ),
        )

    def count_error(self, error: BaseException) -> None:
        """Add ``error`` to ``pixel_llm.errors`` unless it was counted already."""
        target = mark_counted(error)
        if target is not None:
            self.errors.add(1, describe(target).attributes())


# The gauge reads whatever source the active instrumentation set: a re-created observable gauge
# with the same name on the same meter is deduplicated by the SDK (its new callback ignored), so
# the one callback registered first must keep working across uninstrument / instrument.
_breaker_source: Callable[[], Iterable[tuple[str, str]]] | None = None


def set_breaker_source(source: Callable[[], Iterable[tuple[str, str]]] | None) -> None:
    """Set what the state gauge reports: ``(breaker name, state)`` pairs; ``None``: nothing."""
    global _breaker_source
    _breaker_source = source


def _observe_breakers(_options: CallbackOptions) -> Iterable[Observation]:
    observations: list[Observation] = []
    source = _breaker_source
    if source is None:
        return observations
    with guard("metrics.circuit_breaker.state"):
        for name, current in source():
            for state in n.BREAKER_STATES:
                attributes = {n.BREAKER_NAME: name, n.BREAKER_STATE: state}
                observations.append(Observation(1 if state == current else 0, attributes))
    return observations


def register_breaker_gauge(meter: Meter) -> None:
    """Register ``pixel_llm.circuit_breaker.state``: 1 for each breaker's state, 0 for others."""
    meter.create_observable_gauge(
        n.METRIC_BREAKER_STATE,
        callbacks=[_observe_breakers],
        # not "1": the collector's prometheus exporter would append _ratio to the name
        unit="",
        description="1 for the breaker's current state, 0 for the other states.",
    )
