"""Configuration of :class:`~pixel_llm_otel.pipeline.HybridPixelLLM`: frozen, validated once.

``ErrorConfig`` groups the three resilience sections (``retry``, ``circuit_breaker``,
``fallback``), each the resilience package's own config class. Everything accepts either the
dataclass or a plain mapping (read from YAML/JSON, say); mappings go through
:func:`~pixel_llm_otel.validation.validate_config`, so a typo names the field and the known keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from ..errors import ErrorCode, ValidationError
from ..resilience.circuit_breaker import CircuitBreakerConfig
from ..resilience.fallback import FallbackConfig
from ..resilience.retry import RetryConfig
from ..validation import validate_config

__all__ = ["DEFAULT_MODEL", "DEFAULT_URL", "ErrorConfig", "HybridConfig"]

DEFAULT_URL = "http://localhost:1234/v1"
#: LM Studio answers with whichever model is loaded when asked for an unknown name.
DEFAULT_MODEL = "local-model"
_DEVICE_WORDS = ("auto", "cpu", "cuda", "mps")
_CODE = ErrorCode.VALIDATION_CONFIG


@dataclass(frozen=True, slots=True)
class ErrorConfig:
    """The resilience settings of one pipeline.

    ``retry`` wraps each HTTP attempt, ``circuit_breaker`` wraps the whole retried call (one
    generate = one breaker call), ``fallback`` answers when either gives up.
    """

    retry: RetryConfig = field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)

    @classmethod
    def coerce(cls, value: ErrorConfig | Mapping[str, Any] | None) -> ErrorConfig:
        """An ``ErrorConfig`` from ``None`` (defaults), a mapping of sections, or itself."""
        if value is None:
            return cls()
        return validate_config(cls, value, name="error_config")


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValidationError(field=name, value=value, expected=expected, code=_CODE)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """Every option of :class:`HybridPixelLLM` (the constructor's keyword arguments).

    Attributes:
        lm_studio_url: base URL of the OpenAI-compatible API, ``/v1`` included.
        lm_studio_model: the model name sent with each request.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` for the encoder.
        encoder_type: the encoder architecture (``vit``).
        encoder_config: an ``EncoderConfig`` or a mapping of its fields; ``None``: defaults.
        max_tokens / temperature: request defaults; ``0`` and ``0.0`` are honoured.
        use_async: accepted for compatibility with the original API. Both the sync and the async
            methods always run the same async core, so it changes nothing.
        cache_size: entries of the fallback cache (overrides ``fallback.cache_max_entries``).
        error_config: an ``ErrorConfig`` or a mapping with ``retry``, ``circuit_breaker`` and
            ``fallback`` sections.
        api_key: sent as ``Authorization: Bearer``; never logged or shown in ``repr``.
        connect_timeout / read_timeout / total_timeout: per HTTP attempt, seconds.
        provider_name: ``gen_ai.provider.name`` in telemetry.
        send_image: also send the image as a base64 PNG ``image_url`` part (vision models).
        max_concurrency: requests in flight at once (batches and concurrent calls together).
        max_prompt_chars: longest prompt accepted, after cleaning.
        breaker_name: the circuit breaker's name (telemetry label).
    """

    lm_studio_url: str = DEFAULT_URL
    lm_studio_model: str = DEFAULT_MODEL
    device: str = "auto"
    encoder_type: str = "vit"
    encoder_config: Any = None
    max_tokens: int = 256
    temperature: float = 0.7
    use_async: bool = False
    cache_size: int = 1024
    error_config: ErrorConfig = field(default_factory=ErrorConfig)
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    total_timeout: float = 120.0
    provider_name: str = "lm_studio"
    send_image: bool = False
    max_concurrency: int = 16
    max_prompt_chars: int = 8000
    breaker_name: str = "lm_studio"

    def __post_init__(self) -> None:
        _check(
            isinstance(self.lm_studio_url, str)
            and self.lm_studio_url.startswith(("http://", "https://")),
            "lm_studio_url",
            self.lm_studio_url,
            "an http:// or https:// URL",
        )
        _check(
            isinstance(self.lm_studio_model, str) and bool(self.lm_studio_model.strip()),
            "lm_studio_model",
            self.lm_studio_model,
            "a non-empty model name",
        )
        _check(_is_device(self.device), "device", self.device, "auto, cpu, cuda, cuda:N or mps")
        _check(
            isinstance(self.encoder_type, str) and bool(self.encoder_type),
            "encoder_type",
            self.encoder_type,
            "an encoder name such as 'vit'",
        )
        _check(
            _is_int(self.max_tokens) and self.max_tokens >= 0,
            "max_tokens",
            self.max_tokens,
            "an int >= 0",
        )
        _check(
            _is_number(self.temperature) and 0.0 <= self.temperature <= 2.0,
            "temperature",
            self.temperature,
            "a number in [0, 2]",
        )
        _check(isinstance(self.use_async, bool), "use_async", self.use_async, "a bool")
        _check(
            _is_int(self.cache_size) and self.cache_size >= 0,
            "cache_size",
            self.cache_size,
            "an int >= 0 (0 disables the cache)",
        )
        _check(
            isinstance(self.error_config, ErrorConfig),
            "error_config",
            self.error_config,
            "an ErrorConfig (use HybridConfig.build to pass a mapping)",
        )
        _check(
            self.api_key is None or isinstance(self.api_key, str),
            "api_key",
            "<hidden>",
            "a str or None",
        )
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            _check(_is_number(value) and value > 0, name, value, "a number of seconds > 0")
        _check(
            isinstance(self.provider_name, str) and bool(self.provider_name),
            "provider_name",
            self.provider_name,
            "a non-empty str",
        )
        _check(isinstance(self.send_image, bool), "send_image", self.send_image, "a bool")
        _check(
            _is_int(self.max_concurrency) and self.max_concurrency >= 1,
            "max_concurrency",
            self.max_concurrency,
            "an int >= 1",
        )
        _check(
            _is_int(self.max_prompt_chars) and self.max_prompt_chars >= 1,
            "max_prompt_chars",
            self.max_prompt_chars,
            "an int >= 1",
        )
        _check(
            isinstance(self.breaker_name, str) and bool(self.breaker_name),
            "breaker_name",
            self.breaker_name,
            "a non-empty str",
        )

    @classmethod
    def build(cls, **options: Any) -> HybridConfig:
        """A config from keyword options; ``error_config`` may be a mapping or ``None``."""
        options["error_config"] = ErrorConfig.coerce(options.get("error_config"))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                field=unknown[0],
                value=unknown[0],
                expected=f"one of {', '.join(sorted(known))}",
                code=_CODE,
            )
        return cls(**options)

    @property
    def fallback_config(self) -> FallbackConfig:
        """The fallback section with ``cache_size`` applied (0 turns the cache strategy off)."""
        fallback = self.error_config.fallback
        if self.cache_size == 0:
            order = tuple(s for s in fallback.order if s != "cache")
            return replace(fallback, order=order, cache_max_entries=1)
        return replace(fallback, cache_max_entries=self.cache_size)

    @property
    def server_address(self) -> tuple[str, int | None]:
        """Host and port of ``lm_studio_url`` (for telemetry)."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.lm_studio_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.hostname or "", port

    @property
    def deadline(self) -> float | None:
        """The retry deadline in seconds (``None``: no deadline)."""
        return _seconds(self.error_config.retry.deadline)


def _is_device(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value in _DEVICE_WORDS:
        return True
    head, _, index = value.partition(":")
    return head == "cuda" and index.isdigit()
