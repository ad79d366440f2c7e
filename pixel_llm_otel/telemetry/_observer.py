"""The OpenTelemetry :class:`~pixel_llm_otel.hooks.PipelineObserver`: scopes become spans.

Each scope starts its span, makes it current (so the aiohttp HTTP spans nest under ``chat
{model}`` and resilience events land on the active span), and on exit records its metrics while
the span is still current (so histogram exemplars point at it), ends the span and restores the
previous context. An exception escaping a scope is recorded on it and re-raised untouched; an
exception inside telemetry code is swallowed (:mod:`._safety`).

This runs on every generate call, so the hot path does as little of its own work as it can: the
attribute sets of spans and metric points are built once per distinct value combination and
reused (:class:`_AttributeCache`; the SDK copies what it is given), facts reported during a scope
are written to its span in one ``set_attributes`` call at exit, ``is_recording()`` is asked once,
the context is read once per scope (:func:`._scope.scope_mode`), and errors in telemetry code are
caught with a plain ``try``/``except``.

A sampled-out call (the sampler dropped ``pixel_llm.generate``) starts no other span: its encode
and chat scopes are LIGHT (no span, no context change, no attribute work; only their metric
points, which count every call) and the HTTP observer only propagates the trace context
(``traceparent`` with the sampled flag off). What such a call costs beyond its metric records is
one unsampled span start (the sampler's decision) and the propagation headers.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from ..hooks import NOOP_OBSERVER, ChatRequestInfo, ChatResponseInfo
from . import _names as n
from ._chat_content import record_content
from ._content import ContentPolicy
from ._events import GenAIEvents
from ._metrics import Instruments
from ._names_mode import NameMode
from ._safety import report_failure
from ._scope import (
    CACHE_MAX,
    LIGHT,
    OFF,
    AttributeCache,
    Attrs,
    LightPolicy,
    Scope,
    batch_attributes,
    current_context,
    response_values,
    scope_mode,
)
from ._stream import OTelStreamScope

__all__ = ["OTelObserver"]


class _GenerateScope(Scope):
    """``pixel_llm.generate`` (one image) or ``pixel_llm.generate_batch`` (its parent)."""

    __slots__ = (
        "_attempts",
        "_batch_size",
        "_model",
        "_name",
        "_outcome",
        "_record_metrics",
        "_strategy",
    )  # fmt: skip
    site = "observer.generate"

    def __init__(self, obs: OTelObserver, *, name: str, model: str, batch_size: int,
                 record_metrics: bool) -> None:  # fmt: skip
        super().__init__(obs)
        self._name = name
        self._batch_size = batch_size
        self._model = model
        self._record_metrics = record_metrics
        self._outcome: str | None = None
        self._attempts: int | None = None
        self._strategy: str | None = None

    def __enter__(self) -> _GenerateScope:
        size = self._batch_size
        attributes = self._obs.span_attributes.get(size, batch_attributes, size)
        self._open(self._name, SpanKind.INTERNAL, attributes)
        return self

    @property
    def trace_id(self) -> str | None:
        ctx = self._span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def finish(
        self,
        *,
        outcome: str,
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        try:
            self._outcome = outcome
            self._attempts = attempts
            self._strategy = fallback_strategy
            if outcome == n.OUTCOME_ERROR:
                if error is not None:
                    if error is not self._failed:
                        self._mark_error(error)
                else:
                    self._error_type = self._error_type or "_OTHER"
                    if self._recording:
                        self._span.set_status(Status(StatusCode.ERROR, self._error_type))
            elif error is not None:  # the error behind a fallback: counted, not a span error
                self._obs.instruments.count_error(error)
        except Exception:
            report_failure(f"{self.site}.finish")

    def _escaped(self, exc: BaseException) -> None:
        self._outcome = n.OUTCOME_ERROR
        super()._escaped(exc)

    def _finish_span(self) -> None:
        outcome = self._outcome
        if outcome is None:
            return
        values: dict[str, Any] = {n.OUTCOME: outcome}
        if self._attempts is not None:
            values[n.ATTEMPTS] = self._attempts
        if self._strategy is not None:
            values[n.FALLBACK_STRATEGY] = self._strategy
        if outcome == n.OUTCOME_ERROR and self._error_type is not None:
            values[n.ERROR_TYPE] = self._error_type
        self._span.set_attributes(values)

    def _record(self, duration: float) -> None:
        if not self._record_metrics:
            return
        outcome = self._outcome or n.OUTCOME_SUCCESS
        error_type = self._error_type if outcome == n.OUTCOME_ERROR else None
        model = self._model
        instruments = self._obs.instruments
        duration_attrs, request_attrs = self._obs.metric_attributes.get(
            (n.METRIC_GENERATE_DURATION, outcome, model, error_type),
            _generate_metric_attributes,
            outcome,
            model,
            error_type,
        )
        instruments.generate_duration.record(duration, duration_attrs)
        instruments.generate_requests.add(1, request_attrs)


def _generate_metric_attributes(
    outcome: str, model: str, error_type: str | None
) -> tuple[Attrs, Attrs]:
    duration = {n.OUTCOME: outcome, n.GEN_AI_REQUEST_MODEL: model}
    if error_type is None:
        return duration, duration
    return duration, {**duration, n.ERROR_TYPE: error_type}


class _EncodeScope(Scope):
    """``pixel_llm.encode``: one encoder pass."""

    __slots__ = ("_attributes", "_metric_attributes")
    site = "observer.encode"

    def __init__(self, obs: OTelObserver, *, encoder_type: str, device: str, batch_size: int,
                 light: bool = False) -> None:  # fmt: skip
        super().__init__(obs, light=light)
        self._attributes, self._metric_attributes = obs.span_attributes.get(
            (n.SPAN_ENCODE, encoder_type, device, batch_size),
            _encode_attributes,
            encoder_type,
            device,
            batch_size,
        )

    def __enter__(self) -> _EncodeScope:
        self._open(n.SPAN_ENCODE, SpanKind.INTERNAL, self._attributes)
        return self

    def _record(self, duration: float) -> None:
        self._obs.instruments.encoder_duration.record(duration, self._metric_attributes)


def _encode_attributes(encoder_type: str, device: str, batch_size: int) -> tuple[Attrs, Attrs]:
    """``(span, metric point)`` attributes of an encode scope."""
    return (
        {n.ENCODER_TYPE: encoder_type, n.ENCODER_DEVICE: device, n.BATCH_SIZE: batch_size},
        {n.ENCODER_DEVICE: device},
    )


class _ChatPlan:
    """What every chat scope with the same request settings shares: name and attribute sets."""

    __slots__ = ("_points", "metric_attributes", "name", "span_attributes")

    def __init__(self, request: ChatRequestInfo) -> None:
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
            n.GEN_AI_PROVIDER_NAME: request.provider,
            n.GEN_AI_REQUEST_MODEL: request.model,
            n.SERVER_ADDRESS: request.server_address,
        }
        if request.server_port is not None:
            attributes[n.SERVER_PORT] = request.server_port
        self.metric_attributes: Attrs = dict(attributes)  # the low-cardinality subset
        if request.max_tokens is not None:
            attributes[n.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
        if request.temperature is not None:
            attributes[n.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
        self.name = f"{n.SPAN_CHAT_PREFIX} {request.model}"
        self.span_attributes: Attrs = attributes
        self._points: dict[tuple[str | None, str | None], tuple[Attrs, Attrs, Attrs]] = {}

    def points(
        self, response_model: str | None, error_type: str | None
    ) -> tuple[Attrs, Attrs, Attrs]:
        """``(operation duration, input token, output token)`` point attributes."""
        key = (response_model, error_type)
        found = self._points.get(key)
        if found is None:
            attributes = dict(self.metric_attributes)
            if response_model is not None:
                attributes[n.GEN_AI_RESPONSE_MODEL] = response_model
            if error_type is not None:
                attributes[n.ERROR_TYPE] = error_type
            found = (
                attributes,
                {**attributes, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_INPUT},
                {**attributes, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_OUTPUT},
            )
            if len(self._points) >= CACHE_MAX:
                self._points.clear()
            self._points[key] = found
        return found


def chat_plan(obs: OTelObserver, request: ChatRequestInfo) -> _ChatPlan:
    """The shared plan (span name, attribute sets) of chat scopes with ``request``'s settings."""
    return obs.span_attributes.get(_chat_key(request), _ChatPlan, request)


def _chat_key(request: ChatRequestInfo) -> tuple[Any, ...]:
    return (request.model, request.provider, request.server_address, request.server_port,
            request.max_tokens, request.temperature)  # fmt: skip


class _ChatScope(Scope):
    """``chat {model}``: the logical GenAI operation over every attempt and backoff."""

    __slots__ = ("_attempts", "_plan", "_request", "_response")
    site = "observer.chat"

    def __init__(self, obs: OTelObserver, request: ChatRequestInfo, *, light: bool = False) -> None:
        super().__init__(obs, light=light)
        self._plan: _ChatPlan = obs.span_attributes.get(_chat_key(request), _ChatPlan, request)
        self._request = request
        self._response: ChatResponseInfo | None = None
        self._attempts: int | None = None

    def __enter__(self) -> _ChatScope:
        plan = self._plan
        self._open(plan.name, SpanKind.CLIENT, plan.span_attributes)
        return self

    def response(self, info: ChatResponseInfo) -> None:
        self._response = info

    def attempts(self, count: int) -> None:
        self._attempts = count

    def _finish_span(self) -> None:
        values: dict[str, Any] = {}
        info = self._response
        if info is not None:
            if info.finish_reasons:
                values[n.GEN_AI_RESPONSE_FINISH_REASONS] = info.finish_reasons  # a tuple
            response_values(info, values)
        if self._attempts is not None:
            values[n.ATTEMPTS] = self._attempts
        if values:
            self._span.set_attributes(values)
        obs = self._obs
        if obs.content.enabled:
            operation = {**self._plan.span_attributes, **values}
            if self._error_type is not None:
                operation[n.ERROR_TYPE] = self._error_type
            record_content(obs, self._span, operation, self._request, info)

    def _record(self, duration: float) -> None:
        response = self._response
        response_model = response.response_model if response is not None else None
        duration_attrs, input_attrs, output_attrs = self._plan.points(
            response_model, self._error_type
        )
        obs = self._obs
        instruments = obs.instruments
        if obs.names is not NameMode.CURRENT:
            self._record_coming(duration, duration_attrs)
            if obs.names is NameMode.COMING:
                return
        instruments.operation_duration.record(duration, duration_attrs)
        if response is None:
            return
        if response.input_tokens is not None:
            instruments.token_usage.record(response.input_tokens, input_attrs)
        if response.output_tokens is not None:
            instruments.token_usage.record(response.output_tokens, output_attrs)

    def _record_coming(self, duration: float, attributes: Attrs) -> None:
        """The conventions' coming inference metrics (and the exception event)."""
        coming = self._obs.instruments.coming
        if coming is None:
            return
        coming.duration.record(duration, attributes)
        response = self._response
        if response is not None:
            for counter, count in (
                (coming.input_tokens, response.input_tokens),
                (coming.output_tokens, response.output_tokens),
                (coming.cache_read_tokens, response.cached_input_tokens),
                (coming.reasoning_tokens, response.reasoning_output_tokens),
            ):
                if count is not None:
                    counter.add(count, attributes)
        failed = self._failed
        if failed is not None:  # a LIGHT scope has no span: the event joins the current one
            span = trace.get_current_span() if self._light else self._span
            self._obs.events.operation_exception(span, failed, attributes)


class OTelObserver:
    """Maps the pipeline's scopes onto the spans and metrics of the telemetry contract."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        content: ContentPolicy | None = None,
        *,
        events: GenAIEvents | None = None,
        names: NameMode = NameMode.CURRENT,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.content = content or ContentPolicy()
        self.events = events or GenAIEvents()
        self.names = names
        self.span_attributes = AttributeCache()
        self.metric_attributes = AttributeCache()
        self.light = LightPolicy(tracer)

    # Inside ``suppress_instrumentation()`` every scope is the no-op one: no span, no metric.
    # Under a span the sampler dropped, encode and chat scopes are LIGHT (metrics only); the
    # generate scope always starts its span: that is where the sampler decides.
    def generate(self, *, model: str, batch_size: int, provider: str) -> Any:
        if scope_mode(current_context()) == OFF:
            return NOOP_OBSERVER.generate(model=model, batch_size=batch_size, provider=provider)
        return _GenerateScope(
            self, name=n.SPAN_GENERATE, model=model, batch_size=batch_size, record_metrics=True
        )

    def generate_batch(self, *, model: str, batch_size: int, provider: str) -> Any:
        if scope_mode(current_context()) == OFF:
            return NOOP_OBSERVER.generate_batch(
                model=model, batch_size=batch_size, provider=provider
            )
        return _GenerateScope(
            self, name=n.SPAN_GENERATE_BATCH, model=model, batch_size=batch_size,
            record_metrics=False,
        )  # fmt: skip

    def encode(self, *, encoder_type: str, device: str, batch_size: int) -> Any:
        mode = scope_mode(current_context(), self.light())
        if mode == OFF:
            return NOOP_OBSERVER.encode(
                encoder_type=encoder_type, device=device, batch_size=batch_size
            )
        return _EncodeScope(self, encoder_type=encoder_type, device=device,
                            batch_size=batch_size, light=mode == LIGHT)  # fmt: skip

    def chat(self, request: ChatRequestInfo) -> Any:
        mode = scope_mode(current_context(), self.light())
        if mode == OFF:
            return NOOP_OBSERVER.chat(request)
        return _ChatScope(self, request, light=mode == LIGHT)

    def stream(self, *, model: str, batch_size: int, provider: str) -> Any:
        if scope_mode(current_context()) == OFF:
            return NOOP_OBSERVER.stream(model=model, batch_size=batch_size, provider=provider)
        return OTelStreamScope(self, model=model, batch_size=batch_size)
