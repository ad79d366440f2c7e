"""``ClientConfig``: how to reach an OpenAI-compatible server, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .._checks import check_bool, check_int, check_secret, check_text, check_url, to_seconds
from .._version import __version__
from ..errors import ErrorCode, ValidationError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_RESPONSE_BYTES", "ClientConfig"]

DEFAULT_BASE_URL = "http://localhost:1234/v1"
#: 4 MiB: a chat completion is a few KiB; this leaves room for long answers and nothing else.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True, kw_only=True)
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
        max_response_bytes: largest response body accepted, counted after decompression while
            reading (plain, gzip/deflate and streamed bodies alike); past it the call fails with
            ``ERR_RESPONSE_TOO_LARGE`` and memory stays bounded. Default 4 MiB.
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
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "base_url", check_url("base_url", self.base_url))
        check_secret("api_key", self.api_key)
        for name in ("connect_timeout", "read_timeout", "health_timeout", "keepalive_timeout"):
            set_(self, name, to_seconds(name, getattr(self, name), positive=True))
        if self.total_timeout is not None:
            set_(
                self,
                "total_timeout",
                to_seconds("total_timeout", self.total_timeout, positive=True),
            )
        check_int("pool_limit", self.pool_limit, minimum=1)
        check_int("pool_limit_per_host", self.pool_limit_per_host, minimum=0)
        check_int("max_error_body_bytes", self.max_error_body_bytes, minimum=1)
        check_int("max_response_bytes", self.max_response_bytes, minimum=1)
        check_text("user_agent", self.user_agent, what="a User-Agent str")
        check_bool("trust_env", self.trust_env)

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
