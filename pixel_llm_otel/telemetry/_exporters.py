"""OTLP exporters for traces, metrics and logs: gRPC or HTTP/protobuf, from arguments or env.

Precedence per setting: the :func:`configure` argument, then the signal's own ``OTEL_*`` variable,
then the generic one. With no endpoint anywhere, no network exporter is built: nothing leaves the
process unless the user says where to send it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ValidationError

__all__ = ["ExportSettings", "build_exporter", "parse_headers"]

Signal = Literal["traces", "metrics", "logs"]
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL = "http/protobuf"  # the OTLP exporter spec's default
DEFAULT_TIMEOUT_S = 5.0  # short, so shutdown / flush never hang on a dead collector
_HTTP_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def parse_headers(value: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """``"k=v,k2=v2"`` (the ``OTEL_EXPORTER_OTLP_HEADERS`` format) or a mapping, as a dict."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    headers: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.partition("=")
        if sep and key.strip():
            headers[key.strip()] = val.strip()
    return headers


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """What :func:`configure` was told about OTLP export (``None``: use the environment)."""

    endpoint: str | None = None
    protocol: str | None = None
    headers: Mapping[str, str] | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValidationError(
                field="protocol", value=self.protocol, expected=" or ".join(PROTOCOLS)
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ValidationError(
                field="export_timeout", value=self.timeout, expected="> 0 seconds"
            )

    def wants(self, signal: Signal) -> bool:
        """Whether an endpoint is configured for ``signal``."""
        return bool(
            self.endpoint
            or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        )

    def protocol_for(self, signal: Signal) -> str:
        value = (
            self.protocol
            or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or DEFAULT_PROTOCOL
        ).strip()
        if value not in PROTOCOLS:
            raise ValidationError(
                field="OTEL_EXPORTER_OTLP_PROTOCOL", value=value, expected=" or ".join(PROTOCOLS)
            )
        return value

    def _kwargs(self, signal: Signal, protocol: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.endpoint:
            base = self.endpoint.rstrip("/")
            kwargs["endpoint"] = base + _HTTP_PATHS[signal] if protocol != "grpc" else base
        if self.headers is not None:
            kwargs["headers"] = dict(self.headers)
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        elif not (
            os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT")
            or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
        ):
            kwargs["timeout"] = DEFAULT_TIMEOUT_S
        return kwargs


def build_exporter(settings: ExportSettings, signal: Signal) -> Any | None:
    """The OTLP exporter for ``signal``, or ``None`` when no endpoint is configured for it."""
    if not settings.wants(signal):
        return None
    protocol = settings.protocol_for(signal)
    kwargs = settings._kwargs(signal, protocol)
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**kwargs)
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter(**kwargs)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**kwargs)
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(**kwargs)
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )

    return HttpLogExporter(**kwargs)
