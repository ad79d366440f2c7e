"""The OpenTelemetry context and propagation operations of the hot path, at their cheapest.

Every generate call reads the current context a few times, attaches and detaches one context per
scope and injects ``traceparent`` once per HTTP attempt. With the API's default runtime context
(contextvars) these are one ``ContextVar`` call each: :func:`current_context`, :func:`attach` and
:func:`detach` are those calls, bound once, without the API's wrapper frames. Any other runtime
context (``OTEL_PYTHON_CONTEXT``) keeps the API functions.

:func:`inject` writes the W3C ``traceparent`` (and ``tracestate``) itself when the global
propagator is the SDK's default one (W3C trace context, then W3C baggage) and the context carries
no baggage: exactly what that propagator writes, without its two layers of dispatch. Any other
propagator, or baggage, goes through ``opentelemetry.propagate.inject``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["attach", "current_context", "detach", "inject"]

current_context: Callable[[], Context] = otel_context.get_current
attach: Callable[[Context], Any] = otel_context.attach
detach: Callable[[Any], None] = otel_context.detach

_runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_var = getattr(_runtime, "_current_context", None)
if type(_runtime) is ContextVarsRuntimeContext and _var is not None:
    current_context = _var.get
    attach = _var.set
    detach = _var.reset

_DEFAULT_PROPAGATORS = [TraceContextTextMapPropagator, W3CBaggagePropagator]
_BAGGAGE = str(_BAGGAGE_KEY)
_checked: object = None  # the global propagator last looked at
_w3c_only = False  # whether it is the default W3C pair


def _is_default(textmap: object) -> bool:
    propagators = getattr(textmap, "_propagators", None)
    return (
        type(textmap) is CompositePropagator
        and isinstance(propagators, (list, tuple))
        and [type(p) for p in propagators] == _DEFAULT_PROPAGATORS
    )


def inject(headers: MutableMapping[str, str], ctx: Context, span_context: SpanContext) -> None:
    """Propagate ``ctx``, whose current span has ``span_context``, into ``headers``."""
    global _checked, _w3c_only
    textmap = propagate.get_global_textmap()
    if textmap is not _checked:
        _w3c_only, _checked = _is_default(textmap), textmap
    if not _w3c_only or ctx.get(_BAGGAGE):
        propagate.inject(headers, context=ctx)
        return
    if span_context == INVALID_SPAN_CONTEXT:  # what the propagator skips
        return
    headers["traceparent"] = (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags:02x}"
    )
    if span_context.trace_state:
        headers["tracestate"] = span_context.trace_state.to_header()
