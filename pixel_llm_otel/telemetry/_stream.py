"""The OpenTelemetry :class:`~pixel_llm_otel.hooks.StreamScope`: a streamed call's two spans.

``pixel_llm.generate`` starts when the stream does; ``chat {model}`` (a child, with
``gen_ai.request.stream`` = true) when the pipeline first activates it, i.e. after encoding. Both
stay open while the caller reads, and are made current only during the pipeline's own steps
(:meth:`activate`), so spans the caller starts between chunks are never parented under ours.

:meth:`StreamScope.end` ends both exactly once, whoever calls it first (the stream's own
exhaustion, ``close()``, a cancellation handler, a garbage-collector finalizer on any thread, an
``atexit`` hook): a lock and a flag make the later calls no-ops. What it records:

- ``chat {model}``: ``pixel_llm.stream.end``, ``gen_ai.response.time_to_first_chunk`` (from the
  start of the chat operation, retries included, to the first content chunk), the response facts
  and usage when the server sent them; ``error`` appended to ``gen_ai.response.finish_reasons``
  when the stream did not finish; status ERROR and ``error.type`` only for an interruption or a
  failure before the first chunk.
- ``pixel_llm.generate``: outcome, attempts, fallback strategy; ERROR only when outcome=error.
- metrics: ``gen_ai.client.operation.duration`` / ``.token.usage`` / ``.time_to_first_chunk`` /
  ``.time_per_output_chunk`` (one point per chunk after the first, recorded at the end with the
  final attributes), ``pixel_llm.generate.requests`` / ``.duration``.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ..hooks import ChatRequestInfo, ChatResponseInfo
from . import _names as n
from ._chat_content import record_content
from ._errors import describe
from ._names_mode import NameMode
from ._safety import report_failure
from ._scope import batch_attributes, response_values

if TYPE_CHECKING:
    from ._observer import OTelObserver

__all__ = ["OTelStreamScope"]

_clock = time.perf_counter
_INVALID_SPAN = trace.INVALID_SPAN
_SITE = "observer.stream"


class _Activation:
    """Makes one span current for one step of the pipeline."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object | None = None

    def __enter__(self) -> object:
        try:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        except Exception:
            report_failure(f"{_SITE}.activate")
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                report_failure(f"{_SITE}.deactivate")


class OTelStreamScope:
    """Both spans and the metrics of one streamed call (see the module docstring)."""

    __slots__ = (
        "_attempts_seen", "_chat", "_chat_start", "_ended", "_first", "_gaps", "_generate",
        "_last", "_lock", "_model", "_obs", "_plan", "_request", "_response", "_start",
    )  # fmt: skip

    def __init__(self, obs: OTelObserver, *, model: str, batch_size: int) -> None:
        self._obs = obs
        self._request: ChatRequestInfo | None = None
        self._model = model
        self._plan: Any = None
        self._lock = threading.Lock()
        self._ended = False
        self._chat: Span = _INVALID_SPAN
        self._chat_start = 0.0
        self._first: float | None = None
        self._last = 0.0
        self._gaps: list[float] = []
        self._response: ChatResponseInfo | None = None
        self._attempts_seen = 0
        self._start = _clock()
        self._generate: Span = _INVALID_SPAN
        try:
            size = batch_size
            attributes = obs.span_attributes.get(size, batch_attributes, size)
            self._generate = obs.tracer.start_span(
                n.SPAN_GENERATE, kind=SpanKind.INTERNAL, attributes=attributes
            )
        except Exception:
            report_failure(f"{_SITE}.start")

    # --- the scope protocol ---------------------------------------------------------------
    @property
    def trace_id(self) -> str | None:
        ctx = self._generate.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def activate(self) -> _Activation:
        chat = self._chat
        return _Activation(self._generate if chat is _INVALID_SPAN else chat)

    def start_chat(self, request: ChatRequestInfo) -> None:
        if self._chat is not _INVALID_SPAN or self._ended:
            return
        self._request = request
        try:
            from ._observer import chat_plan

            self._plan = chat_plan(self._obs, request)
        except Exception:
            report_failure(f"{_SITE}.plan")
            return
        self._start_chat(request)

    def first_chunk(self) -> None:
        self._first = self._last = _clock()

    def chunk(self) -> None:
        now = _clock()
        self._gaps.append(now - self._last)
        self._last = now

    def response(self, info: ChatResponseInfo) -> None:
        self._response = info

    def end(
        self,
        *,
        how: str,
        outcome: str,
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        now = _clock()
        try:
            self._end_chat(now, how, attempts, error)
        except Exception:
            report_failure(f"{_SITE}.end_chat")
        try:
            self._end_generate(now, outcome, attempts, fallback_strategy, error)
        except Exception:
            report_failure(f"{_SITE}.end_generate")

    # --- internals --------------------------------------------------------------------------
    def _start_chat(self, request: ChatRequestInfo) -> None:
        try:
            plan = self._plan
            parent = trace.set_span_in_context(self._generate)
            span = self._obs.tracer.start_span(
                plan.name, context=parent, kind=SpanKind.CLIENT, attributes=plan.span_attributes
            )
            self._chat_start = _clock()
            self._chat = span
            if span.is_recording():
                span.set_attribute(n.GEN_AI_REQUEST_STREAM, True)
        except Exception:
            report_failure(f"{_SITE}.start_chat")

    def _end_chat(self, now: float, how: str, attempts: int, error: BaseException | None) -> None:
        span = self._chat
        if span is _INVALID_SPAN:
            return  # the stream ended before any chat (bad input, encoder, breaker refusal...)
        failed = error is not None and (how == "interrupted" or self._first is None)
        if how == "cancelled":
            failed = False
        error_type = describe(error).error_type if failed and error is not None else None
        info = self._response
        if span.is_recording():
            values: dict[str, Any] = {n.STREAM_END: how, n.ATTEMPTS: attempts}
            reasons = list(info.finish_reasons) if info is not None else []
            if (how != "completed" or failed) and "error" not in reasons:
                reasons.append("error")
            if reasons:
                values[n.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
            if self._first is not None:
                values[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first - self._chat_start
            if info is not None:
                response_values(info, values)
            span.set_attributes(values)
            if failed and error is not None and error_type is not None:
                span.set_attribute(n.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
                span.record_exception(error)
            obs = self._obs
            request = self._request
            if obs.content.enabled and request is not None:  # the assembled output, bounded
                operation = {**self._plan.span_attributes, **values}
                if error_type is not None:
                    operation[n.ERROR_TYPE] = error_type
                record_content(obs, span, operation, request, info)
        self._record_chat(now, error_type, info)
        span.end()

    def _record_chat(
        self, now: float, error_type: str | None, info: ChatResponseInfo | None
    ) -> None:
        response_model = info.response_model if info is not None else None
        duration_attrs, input_attrs, output_attrs = self._plan.points(response_model, error_type)
        obs = self._obs
        instruments = obs.instruments
        coming = instruments.coming
        if obs.names is not NameMode.CURRENT and coming is not None:
            coming.duration.record(now - self._chat_start, duration_attrs)
            if self._first is not None:
                coming.time_to_first_chunk.record(self._first - self._chat_start, duration_attrs)
                for gap in self._gaps:
                    coming.time_per_output_chunk.record(gap, duration_attrs)
            if info is not None:
                for counter, count in (
                    (coming.input_tokens, info.input_tokens),
                    (coming.output_tokens, info.output_tokens),
                ):
                    if count is not None:
                        counter.add(count, duration_attrs)
        if obs.names is NameMode.COMING:
            return
        instruments.operation_duration.record(now - self._chat_start, duration_attrs)
        if self._first is not None:
            instruments.time_to_first_chunk.record(self._first - self._chat_start, duration_attrs)
            record = instruments.time_per_output_chunk.record
            for gap in self._gaps:
                record(gap, duration_attrs)
        if info is not None:
            if info.input_tokens is not None:
                instruments.token_usage.record(info.input_tokens, input_attrs)
            if info.output_tokens is not None:
                instruments.token_usage.record(info.output_tokens, output_attrs)

    def _end_generate(
        self,
        now: float,
        outcome: str,
        attempts: int,
        strategy: str | None,
        error: BaseException | None,
    ) -> None:
        span = self._generate
        instruments = self._obs.instruments
        error_type: str | None = None
        if error is not None:
            instruments.count_error(error)
            if outcome == n.OUTCOME_ERROR:
                error_type = describe(error).error_type
        if span.is_recording():
            values: dict[str, Any] = {n.OUTCOME: outcome, n.ATTEMPTS: attempts}
            if strategy is not None:
                values[n.FALLBACK_STRATEGY] = strategy
            if error_type is not None and error is not None:
                values[n.ERROR_TYPE] = error_type
                span.set_status(Status(StatusCode.ERROR, error_type))
                span.record_exception(error)
            span.set_attributes(values)
        duration = {n.OUTCOME: outcome, n.GEN_AI_REQUEST_MODEL: self._model}
        instruments.generate_duration.record(now - self._start, duration)
        requests = duration if error_type is None else {**duration, n.ERROR_TYPE: error_type}
        instruments.generate_requests.add(1, requests)
        span.end()
