"""The OpenTelemetry :class:`~pixel_llm_otel.hooks.PipelineObserver`: scopes become spans.

Each scope starts its span, makes it current (so the aiohttp HTTP spans nest under ``chat
{model}`` and resilience events land on the active span), and on exit records its metrics while
the span is still current (so histogram exemplars point at it), ends the span and restores the
previous context. An exception escaping a scope is recorded on it and re-raised untouched; an
exception inside telemetry code is swallowed (:mod:`._safety`).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ..hooks import ChatRequestInfo, ChatResponseInfo
from . import _names as n
from ._content import ContentPolicy
from ._errors import describe
from ._metrics import Instruments
from ._safety import guard

__all__ = ["OTelObserver"]

_INVALID_SPAN = trace.INVALID_SPAN


class _Scope:
    """Span lifecycle shared by every scope: start, make current, record, end, restore."""

    site = "observer"

    def __init__(self, obs: OTelObserver, name: str, kind: SpanKind, attributes: dict[str, Any]):
        self._obs = obs
        self._name = name
        self._kind = kind
        self._attributes = attributes
        self._span: Span = _INVALID_SPAN
        self._token: object | None = None
        self._start = 0.0
        self._error_type: str | None = None
        self._failed: BaseException | None = None

    def __enter__(self) -> Any:
        with guard(f"{self.site}.enter"):
            self._start = time.perf_counter()
            self._span = self._obs.tracer.start_span(
                self._name, kind=self._kind, attributes=self._attributes
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
            self._started()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with guard(f"{self.site}.exit"):
            if exc is not None:
                self._escaped(exc)
            self._record(time.perf_counter() - self._start)
        with guard(f"{self.site}.end"):
            self._span.end()
        if self._token is not None:
            with guard(f"{self.site}.detach"):
                otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    # --- shared helpers -------------------------------------------------------------------
    def _mark_error(self, error: BaseException) -> None:
        """Error status, ``error.type``, exception event; count it in ``pixel_llm.errors``."""
        info = describe(error)
        self._error_type = info.error_type
        self._failed = error
        span = self._span
        if span.is_recording():
            span.set_attribute(n.ERROR_TYPE, info.error_type)
            span.set_status(Status(StatusCode.ERROR, info.error_type))
            span.record_exception(error)
        self._obs.instruments.count_error(error)

    def _escaped(self, exc: BaseException) -> None:
        if exc is not self._failed:  # not reported already with fail() / finish(error=)
            self._mark_error(exc)

    def _started(self) -> None:
        return None

    def _record(self, duration: float) -> None:
        return None

    # --- the no-op parts of every scope protocol -------------------------------------------
    def fail(self, error: BaseException) -> None:
        with guard(f"{self.site}.fail"):
            if error is not self._failed:
                self._mark_error(error)


class _GenerateScope(_Scope):
    """``pixel_llm.generate`` (one image) or ``pixel_llm.generate_batch`` (its parent)."""

    site = "observer.generate"

    def __init__(self, obs: OTelObserver, *, name: str, model: str, batch_size: int,
                 record_metrics: bool) -> None:  # fmt: skip
        super().__init__(obs, name, SpanKind.INTERNAL, {n.BATCH_SIZE: batch_size})
        self._model = model
        self._record_metrics = record_metrics
        self._outcome: str | None = None

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
        with guard(f"{self.site}.finish"):
            self._outcome = outcome
            span = self._span
            if span.is_recording():
                span.set_attribute(n.OUTCOME, outcome)
                span.set_attribute(n.ATTEMPTS, attempts)
                if fallback_strategy is not None:
                    span.set_attribute(n.FALLBACK_STRATEGY, fallback_strategy)
            if outcome == n.OUTCOME_ERROR and error is not None:
                if error is not self._failed:
                    self._mark_error(error)
            elif outcome == n.OUTCOME_ERROR:
                self._error_type = self._error_type or "_OTHER"
                if span.is_recording():
                    span.set_attribute(n.ERROR_TYPE, self._error_type)
                    span.set_status(Status(StatusCode.ERROR, self._error_type))
            elif error is not None:  # the error behind a fallback: counted, not a span error
                self._obs.instruments.count_error(error)

    def _escaped(self, exc: BaseException) -> None:
        self._outcome = n.OUTCOME_ERROR
        if self._span.is_recording():
            self._span.set_attribute(n.OUTCOME, n.OUTCOME_ERROR)
        super()._escaped(exc)

    def _record(self, duration: float) -> None:
        if not self._record_metrics:
            return
        outcome = self._outcome or n.OUTCOME_SUCCESS
        attributes: dict[str, Any] = {n.OUTCOME: outcome, n.GEN_AI_REQUEST_MODEL: self._model}
        self._obs.instruments.generate_duration.record(duration, attributes)
        if outcome == n.OUTCOME_ERROR and self._error_type is not None:
            attributes[n.ERROR_TYPE] = self._error_type
        self._obs.instruments.generate_requests.add(1, attributes)


class _EncodeScope(_Scope):
    """``pixel_llm.encode``: one encoder pass."""

    site = "observer.encode"

    def __init__(self, obs: OTelObserver, *, encoder_type: str, device: str, batch_size: int):
        attributes = {
            n.ENCODER_TYPE: encoder_type,
            n.ENCODER_DEVICE: device,
            n.BATCH_SIZE: batch_size,
        }
        super().__init__(obs, n.SPAN_ENCODE, SpanKind.INTERNAL, attributes)
        self._device = device

    def _record(self, duration: float) -> None:
        self._obs.instruments.encoder_duration.record(duration, {n.ENCODER_DEVICE: self._device})


class _ChatScope(_Scope):
    """``chat {model}``: the logical GenAI operation over every attempt and backoff."""

    site = "observer.chat"

    def __init__(self, obs: OTelObserver, request: ChatRequestInfo) -> None:
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
            n.GEN_AI_PROVIDER_NAME: request.provider,
            n.GEN_AI_REQUEST_MODEL: request.model,
            n.SERVER_ADDRESS: request.server_address,
        }
        if request.server_port is not None:
            attributes[n.SERVER_PORT] = request.server_port
        self._metric_attributes = dict(attributes)  # the low-cardinality subset, before extras
        if request.max_tokens is not None:
            attributes[n.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
        if request.temperature is not None:
            attributes[n.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
        super().__init__(obs, f"{n.SPAN_CHAT_PREFIX} {request.model}", SpanKind.CLIENT, attributes)
        self._request = request
        self._response: ChatResponseInfo | None = None

    def _started(self) -> None:
        if self._obs.content.enabled and self._span.is_recording():
            value = self._obs.content.input_messages(self._request.messages)
            if value is not None:
                self._span.set_attribute(n.GEN_AI_INPUT_MESSAGES, value)

    def response(self, info: ChatResponseInfo) -> None:
        with guard(f"{self.site}.response"):
            self._response = info
            span = self._span
            if not span.is_recording():
                return
            values: dict[str, Any] = {
                n.GEN_AI_RESPONSE_MODEL: info.response_model,
                n.GEN_AI_RESPONSE_ID: info.response_id,
                n.GEN_AI_RESPONSE_FINISH_REASONS: list(info.finish_reasons) or None,
                n.GEN_AI_USAGE_INPUT_TOKENS: info.input_tokens,
                n.GEN_AI_USAGE_OUTPUT_TOKENS: info.output_tokens,
            }
            span.set_attributes({k: v for k, v in values.items() if v is not None})
            if self._obs.content.enabled:
                output = self._obs.content.output_messages(info.output_text, info.finish_reasons)
                if output is not None:
                    span.set_attribute(n.GEN_AI_OUTPUT_MESSAGES, output)

    def attempts(self, count: int) -> None:
        with guard(f"{self.site}.attempts"):
            if self._span.is_recording():
                self._span.set_attribute(n.ATTEMPTS, count)

    def _record(self, duration: float) -> None:
        attributes: dict[str, Any] = dict(self._metric_attributes)
        response = self._response
        if response is not None and response.response_model is not None:
            attributes[n.GEN_AI_RESPONSE_MODEL] = response.response_model
        if self._error_type is not None:
            attributes[n.ERROR_TYPE] = self._error_type
        instruments = self._obs.instruments
        instruments.operation_duration.record(duration, attributes)
        if response is None:
            return
        for token_type, count in (
            (n.TOKEN_TYPE_INPUT, response.input_tokens),
            (n.TOKEN_TYPE_OUTPUT, response.output_tokens),
        ):
            if count is not None:
                instruments.token_usage.record(
                    count, {**attributes, n.GEN_AI_TOKEN_TYPE: token_type}
                )


class OTelObserver:
    """Maps the pipeline's scopes onto the spans and metrics of the telemetry contract."""

    def __init__(
        self, tracer: Tracer, instruments: Instruments, content: ContentPolicy | None = None
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.content = content or ContentPolicy()

    def generate(self, *, model: str, batch_size: int, provider: str) -> _GenerateScope:
        return _GenerateScope(
            self, name=n.SPAN_GENERATE, model=model, batch_size=batch_size, record_metrics=True
        )

    def generate_batch(self, *, model: str, batch_size: int, provider: str) -> _GenerateScope:
        return _GenerateScope(
            self, name=n.SPAN_GENERATE_BATCH, model=model, batch_size=batch_size,
            record_metrics=False,
        )  # fmt: skip

    def encode(self, *, encoder_type: str, device: str, batch_size: int) -> _EncodeScope:
        return _EncodeScope(self, encoder_type=encoder_type, device=device, batch_size=batch_size)

    def chat(self, request: ChatRequestInfo) -> _ChatScope:
        return _ChatScope(self, request)
