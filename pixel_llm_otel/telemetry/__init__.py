"""OpenTelemetry for pixel-llm-otel: the only package that imports the OpenTelemetry SDK.

Enable everything with one call::

    from pixel_llm_otel.telemetry import configure

    handle = configure()  # OTEL_* env vars honoured; OTLP when an endpoint is set
    ...
    handle.shutdown()

or with no code change: ``opentelemetry-instrument python app.py`` (entry point
``PixelLLMInstrumentor``). Names emitted: ``docs/telemetry-contract.md``; guide:
``docs/observability.md``.
"""

from __future__ import annotations

from ._configure import DEFAULT_SERVICE_NAME, TelemetryHandle, configure
from ._dropped import DroppedStats
from ._http import request_hook, response_hook
from ._instrumentor import PixelLLMInstrumentor
from ._safety import failure_count

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "DroppedStats",
    "PixelLLMInstrumentor",
    "TelemetryHandle",
    "configure",
    "failure_count",
    "request_hook",
    "response_hook",
]
