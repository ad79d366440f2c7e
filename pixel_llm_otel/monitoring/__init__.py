"""Monitoring without OpenTelemetry's SDK: JSON structured logging and in-process error metrics."""

from __future__ import annotations

__all__: list[str] = []
