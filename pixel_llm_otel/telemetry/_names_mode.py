"""Which metric names to emit: today's, the conventions' coming inference names, or both.

``OTEL_SEMCONV_STABILITY_OPT_IN`` is a comma-separated list (the variable OpenTelemetry uses for
every convention migration). Ours:

=========================  ================================================================
(not listed)               today's names: ``gen_ai.client.operation.duration``,
                           ``gen_ai.client.token.usage`` (the default)
``gen_ai_inference``       the coming names only: ``gen_ai.client.inference.duration``,
                           counters ``gen_ai.client.inference.usage.*_tokens``, the
                           ``gen_ai.client.operation.exception`` event
``gen_ai_inference/dup``   both (``/dup`` wins when both are listed), for a migration window
=========================  ================================================================

The recording rules in ``collector/prometheus/rules`` unify both, so dashboards and alerts work in
every mode. ``gen_ai.provider.name`` is emitted in every mode; the deprecated ``gen_ai.system``
never.
"""

from __future__ import annotations

import enum
import os

from . import _names as n

__all__ = ["NameMode", "name_mode"]


class NameMode(enum.Enum):
    """The metric and event names emitted."""

    CURRENT = "current"  # today's names (default)
    COMING = "coming"  # the next release's inference names only
    BOTH = "both"  # both, for a migration window

    @property
    def current(self) -> bool:
        return self is not NameMode.COMING

    @property
    def coming(self) -> bool:
        return self is not NameMode.CURRENT


def name_mode(value: str | None = None) -> NameMode:
    """The mode of an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value (the environment's when ``None``)."""
    raw = os.environ.get(n.ENV_SEMCONV_OPT_IN, "") if value is None else value
    options = {item.strip().lower() for item in raw.split(",")}
    if n.OPT_IN_INFERENCE_DUP in options:
        return NameMode.BOTH
    if n.OPT_IN_INFERENCE in options:
        return NameMode.COMING
    return NameMode.CURRENT
