"""The span lifecycle every observer scope shares, the attribute-set cache, and what a scope
does in the context it is opened in (:func:`scope_mode`).

Split from :mod:`._observer` (which holds the scopes of the telemetry contract) so each module has
one job. See :mod:`._observer` for why the hot path looks the way it does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import (  # type: ignore[attr-defined]
    _SUPPRESS_INSTRUMENTATION_KEY,
    _SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY

from . import _names as n
from ._context import attach, current_context, detach
from ._errors import describe
from ._safety import report_failure

if TYPE_CHECKING:
    from ..hooks import ChatResponseInfo
    from ._observer import OTelObserver

__all__ = [
    "CACHE_MAX",
    "FULL",
    "LIGHT",
    "OFF",
    "AttributeCache",
    "Attrs",
    "LightPolicy",
    "Scope",
    "batch_attributes",
    "clock",
    "current_context",
    "response_values",
    "scope_mode",
]

_INVALID_SPAN = trace.INVALID_SPAN
_SAMPLED = trace.TraceFlags.SAMPLED
_SUPPRESS = str(_SUPPRESS_INSTRUMENTATION_KEY)
_SUPPRESS_PLAIN = str(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
_in_context = trace.set_span_in_context
_clock = time.perf_counter

Attrs = Mapping[str, Any]
V = TypeVar("V")

#: Distinct attribute sets kept per cache. Metric attributes are low cardinality by contract; span
#: attributes such as ``gen_ai.request.temperature`` come from callers, so the cache is bounded
#: (when full it starts over) rather than trusting them.
CACHE_MAX = 256


class AttributeCache:
    """Attribute mappings built once per key and shared; never mutated after they are built."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}

    def get(self, key: Hashable, build: Callable[..., V], *args: Any) -> V:
        """The entry of ``key``, ``build(*args)`` on a miss (no closure made per lookup)."""
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= CACHE_MAX:
                self._entries.clear()
            found = self._entries[key] = build(*args)
        return found


#: What a scope does (:func:`scope_mode`): nothing (inside ``suppress_instrumentation()``) ...
OFF = 0
#: ... metrics only: no span, no context change (under a span the sampler dropped) ...
LIGHT = 1
#: ... or its span, attributes, events and metrics.
FULL = 2


def scope_mode(ctx: Context, light: bool = True) -> int:
    """What a scope opened in ``ctx`` does: one read of the context decides it.

    :data:`OFF` inside ``suppress_instrumentation()`` (what ``is_instrumentation_enabled()``
    says, without its two context lookups). :data:`LIGHT` under a valid span whose trace is not
    sampled, when ``light`` says the tracer's sampler drops every span below such a parent (see
    :class:`LightPolicy`): the scope starts none (the SDK's span start, attach and detach are
    most of a sampled-out call's cost) and records only the metrics, which count every call.
    :data:`FULL` otherwise.
    """
    if ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_PLAIN):
        return OFF
    parent: Span | None = ctx.get(_SPAN_KEY)  # type: ignore[assignment]
    if light and parent is not None:
        span_context = parent.get_span_context()
        if not span_context.trace_flags & _SAMPLED and span_context.is_valid:
            return LIGHT
    return FULL


class LightPolicy:
    """Whether scopes may go :data:`LIGHT` under an unsampled span: only when the tracer's
    sampler is known to drop the children of an unsampled local parent (the SDK default,
    ``ParentBased`` with ``local_parent_not_sampled=ALWAYS_OFF``). Any other sampler (one that
    samples such children, a custom one) gets its spans, started as usual. Decided once the
    tracer is an SDK tracer (a proxy tracer is asked again until its provider is set).
    """

    __slots__ = ("_decided", "_tracer", "allowed")

    def __init__(self, tracer: object) -> None:
        self._tracer = tracer
        self._decided = False
        self.allowed = False

    def __call__(self) -> bool:
        if self._decided:
            return self.allowed
        tracer = self._tracer
        real = getattr(tracer, "_real_tracer", None) or tracer  # the API's ProxyTracer
        sampler = getattr(real, "sampler", None)
        if sampler is None:
            return False  # not an SDK tracer (yet): start spans as usual
        self.allowed = _drops_unsampled_children(sampler)
        self._decided = True
        return self.allowed


def _drops_unsampled_children(sampler: object) -> bool:
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler

    if not isinstance(sampler, ParentBased):
        return False
    delegate = getattr(sampler, "_local_parent_not_sampled", None)
    return isinstance(delegate, StaticSampler) and delegate._decision is Decision.DROP


def response_values(info: ChatResponseInfo, values: dict[str, Any]) -> None:
    """Add what a chat response reported (model, id, token usage and its details) to a span's
    end-of-scope ``values``; finish reasons are the caller's (a stream adds ``error``)."""
    if info.response_model is not None:
        values[n.GEN_AI_RESPONSE_MODEL] = info.response_model
    if info.response_id is not None:
        values[n.GEN_AI_RESPONSE_ID] = info.response_id
    for key, count in (
        (n.GEN_AI_USAGE_INPUT_TOKENS, info.input_tokens),
        (n.GEN_AI_USAGE_OUTPUT_TOKENS, info.output_tokens),
        (n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, info.cached_input_tokens),
        (n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, info.reasoning_output_tokens),
        (n.GEN_AI_USAGE_IMAGE_INPUT_TOKENS, info.image_input_tokens),
    ):
        if count is not None:
            values[key] = count


def batch_attributes(size: int) -> Attrs:
    """The span attributes of a generate / stream scope over ``size`` images."""
    return {n.BATCH_SIZE: size}


class Scope:
    """Span lifecycle shared by every scope: start, make current, record, end, restore."""

    __slots__ = (
        "_error_type", "_failed", "_light", "_obs", "_recording", "_span", "_start", "_token",
    )  # fmt: skip
    site = "observer"

    def __init__(self, obs: OTelObserver, *, light: bool = False) -> None:
        self._obs = obs
        self._light = light  # LIGHT mode: no span, metrics only
        self._span: Span = _INVALID_SPAN
        self._token: object | None = None
        self._start = 0.0
        self._recording = False
        self._error_type: str | None = None
        self._failed: BaseException | None = None

    def _open(self, name: str, kind: SpanKind, attributes: Attrs) -> None:
        try:
            self._start = _clock()
            if self._light:
                return
            ctx = current_context()
            span = self._obs.tracer.start_span(name, ctx, kind, attributes)
            self._span = span
            self._recording = span.is_recording()
            self._token = attach(_in_context(span, ctx))
            self._started()
        except Exception:
            report_failure(f"{self.site}.enter")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                self._escaped(exc)
            self._record(_clock() - self._start)
            if self._recording:
                self._finish_span()
        except Exception:
            report_failure(f"{self.site}.exit")
        try:
            self._span.end()
        except Exception:
            report_failure(f"{self.site}.end")
        token = self._token
        if token is not None:
            self._token = None
            try:
                detach(token)
            except Exception:
                report_failure(f"{self.site}.detach")

    # --- shared helpers -------------------------------------------------------------------
    def _mark_error(self, error: BaseException) -> None:
        """Error status, ``error.type``, exception event; count it in ``pixel_llm.errors``."""
        info = describe(error)
        self._error_type = info.error_type
        self._failed = error
        if self._recording:
            span = self._span
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

    def _finish_span(self) -> None:
        """Write the facts reported during the scope to the span (recording spans only)."""
        return None

    # --- the no-op parts of every scope protocol -------------------------------------------
    def fail(self, error: BaseException) -> None:
        try:
            if error is not self._failed:
                self._mark_error(error)
        except Exception:
            report_failure(f"{self.site}.fail")


clock = _clock
