"""``PixelLLMInstrumentor``: the ``BaseInstrumentor`` behind ``opentelemetry-instrument``.

``instrument()`` installs the OpenTelemetry pipeline observer and the HTTP attempt observer (the
``POST`` spans), and subscribes the resilience-event listener to the global bus;
``uninstrument()`` undoes exactly that. Uninstrumented, the pipeline runs the no-op observer and
creates no spans. Nothing global of anyone else's is touched: no provider is replaced, aiohttp is
not patched (the client reports its own attempts), so a host's aiohttp or openai instrumentation
can be enabled and disabled in any order next to ours.
"""

from __future__ import annotations

import warnings
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
from ._content import ContentPolicy
from ._events import GenAIEvents
from ._http import HttpSpans
from ._listener import TelemetryListener
from ._metrics import Instruments, register_breaker_gauge, set_breaker_source
from ._names_mode import name_mode
from ._observer import OTelObserver
from ._upload import upload_hook_from_env

__all__ = ["PixelLLMInstrumentor"]


class PixelLLMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument pixel-llm-otel: pipeline spans, resilience events and HTTP attempt spans.

    Keyword arguments of :meth:`instrument`:
        tracer_provider, meter_provider, logger_provider: default to the global ones.
        capture_content: ``no_content`` | ``span_only`` | ``event_only`` | ``span_and_event``
            (legacy ``True``/``False``); default from
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``no_content``).
        content_max_chars: bound on the text of each content value (default 4096).
        content_image_max_bytes: inline image bytes up to this size (default: never; env
            ``PIXEL_LLM_OTEL_CAPTURE_IMAGE_MAX_BYTES``).
        content_upload_path: a directory or fsspec URL for the upload completion hook (default
            from ``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK=upload`` +
            ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH``).
        semconv_opt_in: an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value (default: the variable).
        instrument_http: make the ``POST`` attempt spans (default True).
    """

    _observer: OTelObserver | None = None
    _listener: TelemetryListener | None = None
    _http: HttpSpans | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # only our own package: aiohttp is not patched

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.get("tracer_provider")
        meter_provider = kwargs.get("meter_provider")
        if kwargs.get("http_metrics"):
            warnings.warn(
                "http_metrics is no longer supported: the POST spans are ours, aiohttp is not "
                "instrumented; gen_ai.client.operation.duration times the chat operation",
                DeprecationWarning,
                stacklevel=4,
            )
        tracer = trace.get_tracer(n.SCOPE_NAME, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(n.SCOPE_NAME, __version__, meter_provider=meter_provider)
        names = name_mode(kwargs.get("semconv_opt_in"))
        instruments = Instruments.create(meter, coming=names.coming)
        content = ContentPolicy.create(
            kwargs.get("capture_content"),
            max_chars=kwargs.get("content_max_chars"),
            image_max_bytes=kwargs.get("content_image_max_bytes"),
            hook=upload_hook_from_env(kwargs.get("content_upload_path")),
        )
        listener = TelemetryListener(instruments)
        listener.seed()
        register_breaker_gauge(meter)
        set_breaker_source(listener.breaker_states)
        events = GenAIEvents(kwargs.get("logger_provider"))
        observer = OTelObserver(tracer, instruments, content, events=events, names=names)
        GLOBAL_BUS.subscribe(listener)
        hooks.set_observer(observer)
        self._observer, self._listener = observer, listener
        if kwargs.get("instrument_http", True):
            self._http = HttpSpans(tracer)
            hooks.set_http_observer(self._http)

    def _uninstrument(self, **kwargs: Any) -> None:
        observer = self._observer
        if observer is not None and hooks.get_observer() is observer:
            hooks.set_observer(None)
        if self._http is not None and hooks.get_http_observer() is self._http:
            hooks.set_http_observer(None)
        if self._listener is not None:
            GLOBAL_BUS.unsubscribe(self._listener)
        set_breaker_source(None)
        hook = observer.content.hook if observer is not None else None
        if hook is not None:
            hook.shutdown()
        self._observer = self._listener = self._http = None
