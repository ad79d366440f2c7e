"""``SyncLMStudioClient``: the async client's code, driven from synchronous callers.

Every call runs on one private event loop owned by the facade (a daemon thread started on first
use, stopped by :meth:`SyncLMStudioClient.close`), so there is no ``asyncio.run`` per call, the
connection pool is reused across calls, and a caller whose thread already runs a loop (Jupyter)
is never touched. Exceptions propagate unchanged. Built with the package's one sync-facade
mechanism (:mod:`pixel_llm_otel._sync_facade`): each method is one line over the async client's.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, cast

from .._sync_facade import SyncFacade, blocking, blocking_iter
from ._async import LMStudioClient
from ._config import ClientConfig

__all__ = ["SyncLMStudioClient"]

#: Added to the request's own timeout for the guard that protects against a wedged loop.
GUARD_SLACK_S = 5.0


class SyncLMStudioClient(SyncFacade):
    """Blocking facade over :class:`LMStudioClient`; same arguments, same errors.

    Thread-safe: calls from several threads run concurrently on the one private loop. After
    :meth:`close` every method raises ``ClientClosedError`` (``ERR_CLIENT_CLOSED``).
    """

    _target: LMStudioClient

    def __init__(self, config: ClientConfig | str | None = None, /, **options: Any) -> None:
        client = LMStudioClient(config, **options)
        super().__init__(client, name="pixel-llm-otel-client")
        cfg = client.config
        total = cast("float | None", cfg.total_timeout)
        self._request_guard = None if total is None else total + GUARD_SLACK_S
        self._chunk_guard = cast(float, cfg.read_timeout) + GUARD_SLACK_S
        self._health_guard = cast(float, cfg.health_timeout) + GUARD_SLACK_S

    def __repr__(self) -> str:
        return f"SyncLMStudioClient(base_url={self._target.base_url!r}, closed={self._closed})"

    @property
    def config(self) -> ClientConfig:
        return self._target.config

    @property
    def base_url(self) -> str:
        return self._target.base_url

    @property
    def server_address(self) -> str:
        return self._target.server_address

    @property
    def server_port(self) -> int | None:
        return self._target.server_port

    chat = blocking(LMStudioClient.chat, guard="_request_guard")
    chat_via_stream = blocking(LMStudioClient.chat_via_stream, guard="_request_guard")
    #: Each chunk is fetched on the private loop; closing the iterator early (``break``) closes
    #: the HTTP response.
    stream_chat = blocking_iter(LMStudioClient.stream_chat, guard="_chunk_guard")
    list_models = blocking(LMStudioClient.list_models, guard="_request_guard")
    health = blocking(LMStudioClient.health, guard="_health_guard")
    check_available = blocking(LMStudioClient.check_available, guard="_health_guard")

    def close(self) -> None:
        """Close the client and stop the private loop. Idempotent."""
        self._close_facade(self._target.close(), GUARD_SLACK_S)

    def __enter__(self) -> SyncLMStudioClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
