"""Added latency: a fixed delay or one drawn from a distribution (part of a fault spec)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

__all__ = ["Latency", "check_number"]

_DISTRIBUTIONS = ("fixed", "uniform", "normal", "exponential")


def check_number(value: object, field_name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field=field_name, value=value, expected="a number")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise ValidationError(
            field=field_name, value=value, expected=f"a finite number >= {minimum:g}"
        )
    return number


@dataclass(frozen=True, slots=True)
class Latency:
    """Added latency in seconds: fixed, or drawn from a distribution (never negative).

    ``fixed``: ``seconds``; ``uniform``: ``low``..``high``; ``normal``: ``mean``, ``stddev``
    (clipped at 0); ``exponential``: ``mean``.
    """

    distribution: str = "fixed"
    seconds: float = 0.0
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    stddev: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in _DISTRIBUTIONS:
            raise ValidationError(
                field="latency.distribution",
                value=self.distribution,
                expected=f"one of {list(_DISTRIBUTIONS)}",
            )
        for name in ("seconds", "low", "high", "mean", "stddev"):
            check_number(getattr(self, name), f"latency.{name}")
        if self.high < self.low:
            raise ValidationError(
                field="latency.high", value=self.high, expected=f">= latency.low ({self.low:g})"
            )

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        return cls("fixed", seconds=seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        return cls("uniform", low=low, high=high)

    @classmethod
    def normal(cls, mean: float, stddev: float) -> Latency:
        return cls("normal", mean=mean, stddev=stddev)

    @classmethod
    def exponential(cls, mean: float) -> Latency:
        return cls("exponential", mean=mean)

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.distribution == "fixed":
            return self.seconds
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high)
        if self.distribution == "normal":
            return max(0.0, rng.gauss(self.mean, self.stddev))
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        keys = {
            "fixed": ("seconds",),
            "uniform": ("low", "high"),
            "normal": ("mean", "stddev"),
            "exponential": ("mean",),
        }[self.distribution]
        return {"distribution": self.distribution, **{k: getattr(self, k) for k in keys}}

    @classmethod
    def from_value(cls, value: object, field_name: str = "latency") -> Latency:
        """From a number (fixed seconds) or a mapping like ``{"distribution": "uniform", ...}``."""
        if isinstance(value, Latency):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls.fixed(check_number(value, field_name))
        if not isinstance(value, Mapping):
            raise ValidationError(
                field=field_name, value=value, expected="seconds or a latency mapping"
            )
        unknown = set(value) - {"distribution", "seconds", "low", "high", "mean", "stddev"}
        if unknown:
            raise ValidationError(
                field=f"{field_name}.{sorted(unknown)[0]}",
                value=value,
                expected="distribution, seconds, low, high, mean, stddev",
            )
        kwargs = {
            k: check_number(v, f"{field_name}.{k}") for k, v in value.items() if k != "distribution"
        }
        return cls(str(value.get("distribution", "fixed")), **kwargs)
