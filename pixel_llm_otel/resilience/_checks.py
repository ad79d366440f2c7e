"""Argument checks shared by the resilience configurations (errors name field, value, expected)."""

from __future__ import annotations

import math

from ..errors import ErrorCode, ValidationError

__all__ = ["check_int", "check_rate", "config_error"]


def config_error(field: str, value: object, expected: str) -> ValidationError:
    """The :class:`ValidationError` for a bad configuration field."""
    return ValidationError(
        field=field, value=value, expected=expected, code=ErrorCode.VALIDATION_CONFIG
    )


def check_int(field: str, value: object, *, minimum: int) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``; otherwise a ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise config_error(field, value, f"an int >= {minimum}")
    return value


def check_rate(field: str, value: object) -> float:
    """``value`` as a float in (0, 1]; otherwise a ValidationError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= 1
    ):
        raise config_error(field, value, "a number in (0, 1]")
    return float(value)
