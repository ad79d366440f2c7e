"""``PixelLLMInstrumentor``: the ``BaseInstrumentor`` behind ``opentelemetry-instrument``.

``instrument()`` installs the OpenTelemetry pipeline observer, subscribes the resilience-event
listener to the global bus, and instruments aiohttp client sessions (unless the host did);
``uninstrument()`` undoes exactly that. Uninstrumented, the pipeline runs the no-op observer and
creates no spans.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from .. import hooks
from .._version import __version__
from ..resilience.events import GLOBAL_BUS
from . import _names as n
from ._content import DEFAULT_MAX_CHARS, ContentPolicy, capture_enabled_from_env
from ._http import instrument_aiohttp, uninstrument_aiohttp
from ._listener import TelemetryListener
from ._metrics import Instruments, register_breaker_gauge, set_breaker_source
from ._observer import OTelObserver

__all__ = ["PixelLLMInstrumentor"]


class PixelLLMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument pixel-llm-otel: pipeline spans, resilience events and HTTP attempt spans.

    Keyword arguments of :meth:`instrument`:
        tracer_provider, meter_provider: default to the global ones.
        capture_content: record chat content; default from
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (off).
        content_max_chars: bound on each content attribute (default 4096).
        instrument_http: instrument aiohttp client sessions (default True).
        http_metrics: keep the aiohttp instrumentation's HTTP duration histogram (default False:
            not in the telemetry contract; ``gen_ai.client.operation.duration`` times the call).
    """

    _observer: OTelObserver | None = None
    _listener: TelemetryListener | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        # What we instrument besides our own package: the HTTP client of the chat calls.
        return ("aiohttp >= 3.9",)

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.get("tracer_provider")
        meter_provider = kwargs.get("meter_provider")
        tracer = trace.get_tracer(n.SCOPE_NAME, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(n.SCOPE_NAME, __version__, meter_provider=meter_provider)
        instruments = Instruments.create(meter)
        capture = kwargs.get("capture_content")
        content = ContentPolicy(
            enabled=capture_enabled_from_env() if capture is None else bool(capture),
            max_chars=int(kwargs.get("content_max_chars") or DEFAULT_MAX_CHARS),
        )
        listener = TelemetryListener(instruments)
        listener.seed()
        register_breaker_gauge(meter)
        set_breaker_source(listener.breaker_states)
        observer = OTelObserver(tracer, instruments, content)
        GLOBAL_BUS.subscribe(listener)
        hooks.set_observer(observer)
        self._observer, self._listener = observer, listener
        if kwargs.get("instrument_http", True):
            instrument_aiohttp(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                http_metrics=bool(kwargs.get("http_metrics", False)),
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._observer is not None and hooks.get_observer() is self._observer:
            hooks.set_observer(None)
        if self._listener is not None:
            GLOBAL_BUS.unsubscribe(self._listener)
        set_breaker_source(None)
        uninstrument_aiohttp()
        self._observer = self._listener = None
