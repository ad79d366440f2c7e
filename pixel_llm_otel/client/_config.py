"""``ClientConfig``: how to reach an OpenAI-compatible server, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ..errors import ErrorCode, ValidationError

__all__ = ["DEFAULT_BASE_URL", "ClientConfig"]

DEFAULT_BASE_URL = "http://localhost:1234/v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Connection settings of :class:`~pixel_llm_otel.client.LMStudioClient`.

    Durations take seconds (float) or a :class:`~datetime.timedelta` and are stored as float
    seconds. The API key is never part of ``repr()``.

    Attributes:
        base_url: the API root, e.g. ``http://localhost:1234/v1`` (no credentials, query or
            fragment; a trailing slash is dropped).
        api_key: sent as ``Authorization: Bearer <key>`` when set; never logged.
        connect_timeout: seconds to open a connection (``sock_connect``).
        read_timeout: seconds to wait for each chunk of data (``sock_read``); for streaming this
            is the longest gap between two events.
        total_timeout: budget for one whole request, body included; ``None``: no total limit.
        health_timeout: total budget of :meth:`~LMStudioClient.health` (kept short).
        pool_limit: most connections open at once (``TCPConnector(limit=...)``).
        pool_limit_per_host: most connections to one host; ``0``: only ``pool_limit`` applies.
        keepalive_timeout: seconds an idle pooled connection is kept.
        user_agent: the ``User-Agent`` header.
        trust_env: honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc`` (off by default:
            LM Studio usually runs on this machine).
        max_error_body_bytes: at most this much of an HTTP error body is read.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float | timedelta = 5.0
    read_timeout: float | timedelta = 60.0
    total_timeout: float | timedelta | None = 120.0
    health_timeout: float | timedelta = 2.0
    pool_limit: int = 100
    pool_limit_per_host: int = 0
    keepalive_timeout: float | timedelta = 15.0
    user_agent: str = f"pixel-llm-otel/{__version__}"
    trust_env: bool = False
    max_error_body_bytes: int = 65536

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "base_url", _check_base_url(self.base_url))
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValidationError(
                "api_key: expected a non-empty str or None",
                field="api_key",
                code=ErrorCode.VALIDATION_CONFIG,
            )  # the value itself is deliberately not reported
        if self.api_key is not None and any(c in self.api_key for c in "\r\n"):
            raise ValidationError(
                "api_key: must not contain line breaks",
                field="api_key",
                code=ErrorCode.VALIDATION_CONFIG,
            )
        for name in ("connect_timeout", "read_timeout", "health_timeout", "keepalive_timeout"):
            set_(self, name, _seconds(name, getattr(self, name)))
        if self.total_timeout is not None:
            set_(self, "total_timeout", _seconds("total_timeout", self.total_timeout))
        _check_int("pool_limit", self.pool_limit, minimum=1)
        _check_int("pool_limit_per_host", self.pool_limit_per_host, minimum=0)
        _check_int("max_error_body_bytes", self.max_error_body_bytes, minimum=1)
        if not isinstance(self.user_agent, str) or not self.user_agent.isprintable():
            raise ValidationError(
                field="user_agent",
                value=self.user_agent,
                expected="a printable str",
                code=ErrorCode.VALIDATION_CONFIG,
            )
        if not isinstance(self.trust_env, bool):
            raise ValidationError(
                field="trust_env",
                value=self.trust_env,
                expected="a bool",
                code=ErrorCode.VALIDATION_CONFIG,
            )

    @classmethod
    def from_options(cls, base: ClientConfig | str | None = None, **options: Any) -> ClientConfig:
        """A config from ``base`` (a config, a base URL or ``None``) with ``options`` replaced.

        Unknown option names raise :class:`ValidationError` naming them.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                field=unknown[0],
                value=unknown,
                expected=f"one of {sorted(known)}",
                code=ErrorCode.VALIDATION_CONFIG,
            )
        if isinstance(base, ClientConfig):
            values = {f.name: getattr(base, f.name) for f in fields(cls)}
        elif base is None or isinstance(base, str):
            values = {} if base is None else {"base_url": base}
        else:
            raise ValidationError(
                field="config",
                value=base,
                expected="a ClientConfig, a base URL str or None",
                code=ErrorCode.VALIDATION_CONFIG,
            )
        values.update(options)
        return cls(**values)

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme

    @property
    def server_address(self) -> str:
        """The host of ``base_url`` (telemetry's ``server.address``)."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def server_port(self) -> int | None:
        """The port of ``base_url``, or the scheme's default (telemetry's ``server.port``)."""
        parts = urlsplit(self.base_url)
        return parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme)

    @property
    def base_path(self) -> str:
        """The path of ``base_url`` without a trailing slash (``/v1``)."""
        return urlsplit(self.base_url).path.rstrip("/")


def _check_base_url(value: object) -> str:
    expected = "an http(s) URL such as http://localhost:1234/v1, without credentials"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            field="base_url", value=value, expected=expected, code=ErrorCode.VALIDATION_CONFIG
        )
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise ValidationError(
            field="base_url",
            value="<unparsable URL>",
            expected=expected,
            code=ErrorCode.VALIDATION_CONFIG,
            cause=exc,
        ) from exc
    if parts.username is not None or parts.password is not None:
        # Never echo the URL: it holds credentials.
        raise ValidationError(
            "base_url: must not embed credentials; pass api_key instead",
            field="base_url",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValidationError(
            field="base_url", value=text, expected=expected, code=ErrorCode.VALIDATION_CONFIG
        )
    if parts.query or parts.fragment:
        raise ValidationError(
            field="base_url",
            value=text,
            expected="a URL without query or fragment",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    del port
    return text


def _seconds(name: str, value: object) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            field=name,
            value=value,
            expected="seconds as a float or a timedelta",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(
            field=name,
            value=value,
            expected="a finite duration > 0",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    return seconds


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(
            field=name,
            value=value,
            expected=f"an int >= {minimum}",
            code=ErrorCode.VALIDATION_CONFIG,
        )
