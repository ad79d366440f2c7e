"""Forget OpenTelemetry's global providers between tests (the API lets each be set only once)."""

from __future__ import annotations


def reset_otel_globals() -> None:
    """Forget the global tracer, meter and logger providers (the API sets each only once)."""
    import opentelemetry._logs._internal as logs_internal
    import opentelemetry.metrics._internal as metrics_internal
    from opentelemetry import trace
    from opentelemetry.util._once import Once

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_internal._LOGGER_PROVIDER = None
