"""Configuration of :class:`~pixel_llm_otel.pipeline.HybridPixelLLM`: sections, composed, frozen.

:class:`HybridConfig` is made of the sections each part of the pipeline reads, each checked once,
when it is built, by the package's one set of checks (:mod:`pixel_llm_otel._checks`), and handed
down unchanged:

==============  ==========================================  =====================================
section         class                                       read by
==============  ==========================================  =====================================
``client``      :class:`~pixel_llm_otel.client.ClientConfig`  ``LMStudioClient(config.client)``
``encoder``     :class:`EncoderSettings`                      the encoder factory
``errors``      :class:`ErrorConfig` (retry, breaker, fallback)  the resilience primitives
``call``        :class:`CallDefaults`                         each call's argument check
==============  ==========================================  =====================================

plus the pipeline's own knobs (``provider_name``, ``breaker_name``, ``max_concurrency``,
``cache_size``). The original flat keywords (``lm_studio_url``, ``lm_studio_model``, ``device``,
``error_config``, ``api_key``, ...) are still accepted and still readable as attributes; an error
in one of them names it as given (``lm_studio_url``), one in a section names its path
(``client.base_url``). Sections also accept plain mappings (read from YAML/JSON, say); mappings go
through :func:`~pixel_llm_otel.validation.validate_config`, so a typo names the field and the
known keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any, TypeVar

from .._checks import (
    check_bool,
    check_device,
    check_int,
    check_max_tokens,
    check_temperature,
    check_text,
    config_error,
)
from ..client import DEFAULT_BASE_URL, ClientConfig
from ..errors import ValidationError
from ..resilience.circuit_breaker import CircuitBreakerConfig
from ..resilience.fallback import FallbackConfig
from ..resilience.retry import RetryConfig
from ..validation import validate_config

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_URL",
    "CallDefaults",
    "EncoderSettings",
    "ErrorConfig",
    "HybridConfig",
]

DEFAULT_URL = DEFAULT_BASE_URL
#: LM Studio answers with whichever model is loaded when asked for an unknown name.
DEFAULT_MODEL = "local-model"
#: Encoder architectures the factory builds (``pixel_llm_otel.encoder.ENCODER_TYPES``).
ENCODER_KINDS = ("vit",)
#: The client's pool is at least this large (and at least ``max_concurrency``).
_MIN_POOL = 100

S = TypeVar("S")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorConfig:
    """The resilience settings of one pipeline.

    ``retry`` wraps each HTTP attempt, ``circuit_breaker`` wraps the whole retried call (one
    generate = one breaker call), ``fallback`` answers when either gives up.
    """

    retry: RetryConfig = field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)

    def __post_init__(self) -> None:
        for name, cls in (
            ("retry", RetryConfig),
            ("circuit_breaker", CircuitBreakerConfig),
            ("fallback", FallbackConfig),
        ):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, validate_config(cls, value, name=name))
            elif not isinstance(value, cls):
                raise config_error(name, value, f"a {cls.__name__} or a mapping of its fields")

    @classmethod
    def coerce(cls, value: ErrorConfig | Mapping[str, Any] | None) -> ErrorConfig:
        """An ``ErrorConfig`` from ``None`` (defaults), a mapping of sections, or itself."""
        if value is None:
            return cls()
        return validate_config(cls, value, name="error_config")


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderSettings:
    """Which vision encoder to build, where, and its architecture.

    Attributes:
        kind: the encoder architecture (``vit``).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` (availability is checked when
            the encoder is built).
        config: an ``EncoderConfig`` or a mapping of its fields (checked here); ``None``: defaults.
    """

    kind: str = "vit"
    device: str = "auto"
    config: Any = None

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise config_error("kind", self.kind, f"one of {list(ENCODER_KINDS)}")
        check_device("device", self.device)
        if self.config is not None:
            from ..encoder import EncoderConfig  # torch: only when a config is given

            try:
                value = EncoderConfig.from_value(self.config)
            except ValidationError as exc:
                name = exc.field or "config"
                full = name if name.startswith("encoder_config") else f"config.{name}"
                raise _renamed(exc, full) from exc
            object.__setattr__(self, "config", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDefaults:
    """The request settings each call starts from (a call's own keywords override them).

    Attributes:
        model: the model name sent with each request.
        max_tokens / temperature: request defaults; ``0`` and ``0.0`` are honoured.
        max_prompt_chars: longest prompt accepted, after cleaning.
        send_image: also send the image as a base64 PNG ``image_url`` part (vision models).
    """

    model: str = DEFAULT_MODEL
    max_tokens: int = 256
    temperature: float = 0.7
    max_prompt_chars: int = 8000
    send_image: bool = False

    def __post_init__(self) -> None:
        check_text("model", self.model, what="a model name")
        check_max_tokens("max_tokens", self.max_tokens)
        object.__setattr__(self, "temperature", check_temperature("temperature", self.temperature))
        check_int("max_prompt_chars", self.max_prompt_chars, minimum=1)
        check_bool("send_image", self.send_image)


#: The original flat keywords: where each one lives now (section, field).
_LEGACY: dict[str, tuple[str, str]] = {
    "lm_studio_url": ("client", "base_url"),
    "api_key": ("client", "api_key"),
    "connect_timeout": ("client", "connect_timeout"),
    "read_timeout": ("client", "read_timeout"),
    "total_timeout": ("client", "total_timeout"),
    "max_response_bytes": ("client", "max_response_bytes"),
    "lm_studio_model": ("call", "model"),
    "max_tokens": ("call", "max_tokens"),
    "temperature": ("call", "temperature"),
    "max_prompt_chars": ("call", "max_prompt_chars"),
    "send_image": ("call", "send_image"),
    "device": ("encoder", "device"),
    "encoder_type": ("encoder", "kind"),
    "encoder_config": ("encoder", "config"),
}
_SECTIONS: dict[str, type[Any]] = {
    "client": ClientConfig,
    "encoder": EncoderSettings,
    "call": CallDefaults,
}


@dataclass(frozen=True, slots=True, init=False)
class HybridConfig:
    """Every setting of :class:`HybridPixelLLM`, as sections (see the module docstring).

    ``HybridConfig(client=..., encoder=..., errors=..., call=..., max_concurrency=...)`` with
    sections (instances or mappings), or the original flat keywords
    (``HybridConfig(lm_studio_url=..., device="cpu", error_config={...})``), or both (a flat
    keyword overrides that field of its section). Everything is checked here; nothing later.

    Attributes:
        client: how to reach the server (URL, API key, timeouts, pool); handed to the client as is.
        encoder: which encoder, on which device, with which architecture.
        errors: retry, circuit breaker and fallback settings.
        call: model and request defaults.
        provider_name: ``gen_ai.provider.name`` in telemetry.
        breaker_name: the circuit breaker's name (telemetry label).
        max_concurrency: requests in flight at once (batches and concurrent calls together).
        cache_size: entries of the fallback cache (overrides ``fallback.cache_max_entries``;
            0 turns the cache strategy off).
        use_async: accepted for compatibility with the original API; changes nothing.
    """

    client: ClientConfig
    encoder: EncoderSettings
    errors: ErrorConfig
    call: CallDefaults
    provider_name: str
    breaker_name: str
    max_concurrency: int
    cache_size: int
    use_async: bool

    def __init__(
        self,
        *,
        client: ClientConfig | Mapping[str, Any] | None = None,
        encoder: EncoderSettings | Mapping[str, Any] | None = None,
        errors: ErrorConfig | Mapping[str, Any] | None = None,
        call: CallDefaults | Mapping[str, Any] | None = None,
        provider_name: str = "lm_studio",
        breaker_name: str = "lm_studio",
        max_concurrency: int = 16,
        cache_size: int = 1024,
        use_async: bool = False,
        **legacy: Any,
    ) -> None:
        _reject_unknown(legacy)
        check_text("provider_name", provider_name)
        check_text("breaker_name", breaker_name)
        check_int("max_concurrency", max_concurrency, minimum=1)
        check_int("cache_size", cache_size, minimum=0)
        check_bool("use_async", use_async)
        if "error_config" in legacy:
            if errors is not None:
                raise config_error(
                    "error_config", "<given with errors=>", "either errors or error_config"
                )
            errors = ErrorConfig.coerce(legacy.pop("error_config"))
        sections: dict[str, Any] = {
            "client": _section(ClientConfig, client, "client"),
            "encoder": _section(EncoderSettings, encoder, "encoder"),
            "call": _section(CallDefaults, call, "call"),
        }
        if client is None:
            pool = max(_MIN_POOL, max_concurrency)
            sections["client"] = replace(sections["client"], pool_limit=pool)
        for name, base in list(sections.items()):
            overrides = {
                _LEGACY[key][1]: value for key, value in legacy.items() if _LEGACY[key][0] == name
            }
            if overrides:
                sections[name] = _override(base, overrides, name)
        set_ = object.__setattr__
        set_(self, "client", sections["client"])
        set_(self, "encoder", sections["encoder"])
        set_(self, "errors", _section(ErrorConfig, errors, "errors"))
        set_(self, "call", sections["call"])
        set_(self, "provider_name", provider_name)
        set_(self, "breaker_name", breaker_name)
        set_(self, "max_concurrency", max_concurrency)
        set_(self, "cache_size", cache_size)
        set_(self, "use_async", use_async)

    @classmethod
    def build(cls, **options: Any) -> HybridConfig:
        """A config from keyword options (sections and/or the original flat keywords)."""
        return cls(**options)

    # --- derived values ---------------------------------------------------------------------
    @property
    def fallback_config(self) -> FallbackConfig:
        """The fallback section with ``cache_size`` applied (0 turns the cache strategy off)."""
        fallback = self.errors.fallback
        if self.cache_size == 0:
            order = tuple(s for s in fallback.order if s != "cache")
            return replace(fallback, order=order, cache_max_entries=1)
        return replace(fallback, cache_max_entries=self.cache_size)

    @property
    def server_address(self) -> tuple[str, int | None]:
        """Host and port of the server (for telemetry)."""
        return self.client.server_address, self.client.server_port

    @property
    def deadline(self) -> float | None:
        """The retry deadline in seconds (``None``: no deadline)."""
        return self.errors.retry.deadline_seconds

    # --- the original flat names, read-only ---------------------------------------------------
    @property
    def lm_studio_url(self) -> str:
        return self.client.base_url

    @property
    def api_key(self) -> str | None:
        return self.client.api_key

    @property
    def connect_timeout(self) -> float | timedelta:
        return self.client.connect_timeout

    @property
    def read_timeout(self) -> float | timedelta:
        return self.client.read_timeout

    @property
    def total_timeout(self) -> float | timedelta | None:
        return self.client.total_timeout

    @property
    def lm_studio_model(self) -> str:
        return self.call.model

    @property
    def max_tokens(self) -> int:
        return self.call.max_tokens

    @property
    def temperature(self) -> float:
        return self.call.temperature

    @property
    def max_prompt_chars(self) -> int:
        return self.call.max_prompt_chars

    @property
    def send_image(self) -> bool:
        return self.call.send_image

    @property
    def device(self) -> str:
        return self.encoder.device

    @property
    def encoder_type(self) -> str:
        return self.encoder.kind

    @property
    def encoder_config(self) -> Any:
        return self.encoder.config

    @property
    def error_config(self) -> ErrorConfig:
        return self.errors


def _reject_unknown(legacy: Mapping[str, Any]) -> None:
    known = sorted({*_LEGACY, "error_config", *(f.name for f in fields(HybridConfig))})
    for key in legacy:
        if key not in _LEGACY and key != "error_config":
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise config_error(key, key, f"one of {', '.join(known)}{hint}")


def _section(cls: type[S], value: object, name: str) -> S:
    """A section from ``None`` (defaults), an instance, or a mapping of its fields."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        try:
            return validate_config(cls, value, name=name)
        except ValidationError as exc:
            inner = exc.field or ""
            if inner == name or inner.startswith(f"{name}."):
                raise
            raise _renamed(exc, f"{name}.{inner}") from exc
    raise config_error(name, value, f"a {cls.__name__} or a mapping of its fields")


def _override(base: Any, overrides: dict[str, Any], section: str) -> Any:
    """``base`` with the flat keywords' values; an error names the keyword as the caller gave it."""
    try:
        return replace(base, **overrides)
    except ValidationError as exc:
        inner = (exc.field or "").partition(".")
        legacy = {f: key for key, (s, f) in _LEGACY.items() if s == section}
        name = legacy.get(inner[0])
        if name is None:
            raise
        raise _renamed(exc, name + (f".{inner[2]}" if inner[2] else "")) from exc


def _renamed(exc: ValidationError, field_name: str) -> ValidationError:
    """``exc`` again, naming ``field_name`` (its value and expectation kept)."""
    if exc.field is None or exc.expected is None:
        return exc
    return ValidationError(
        field=field_name, value=exc.value, expected=exc.expected, code=exc.code, cause=exc
    )
