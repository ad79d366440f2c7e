"""Argument checks of the resilience configurations: the package-wide ones in
:mod:`pixel_llm_otel._checks`, re-exported under the names the resilience modules import."""

from __future__ import annotations

from .._checks import check_int, check_rate, config_error

__all__ = ["check_int", "check_rate", "config_error"]
