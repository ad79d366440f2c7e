"""``SyncLMStudioClient``: the async client's code, driven from synchronous callers.

Every call runs on one private event loop owned by the facade (a daemon thread started on first
use, stopped by :meth:`SyncLMStudioClient.close`), so there is no ``asyncio.run`` per call, the
connection pool is reused across calls, and a caller whose thread already runs a loop (Jupyter)
is never touched. Exceptions propagate unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from .._loop_thread import LoopThread
from ..errors import ClientClosedError
from ._async import HealthStatus, LMStudioClient
from ._config import ClientConfig
from ._types import ChatCompletion, StreamChunk

__all__ = ["SyncLMStudioClient"]

#: Added to the request's own timeout for the guard that protects against a wedged loop.
GUARD_SLACK_S = 5.0


class SyncLMStudioClient:
    """Blocking facade over :class:`LMStudioClient`; same arguments, same errors.

    Thread-safe: calls from several threads run concurrently on the one private loop.
    """

    def __init__(self, config: ClientConfig | str | None = None, /, **options: Any) -> None:
        self._client = LMStudioClient(config, **options)
        self._runner = LoopThread(name="pixel-llm-otel-client")
        self._closed = False
        cfg = self._client.config
        total = cast("float | None", cfg.total_timeout)
        self._guard = None if total is None else total + GUARD_SLACK_S
        self._chunk_guard = cast(float, cfg.read_timeout) + GUARD_SLACK_S
        self._health_guard = cast(float, cfg.health_timeout) + GUARD_SLACK_S

    def __repr__(self) -> str:
        return f"SyncLMStudioClient(base_url={self._client.base_url!r}, closed={self._closed})"

    @property
    def config(self) -> ClientConfig:
        return self._client.config

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def server_address(self) -> str:
        return self._client.server_address

    @property
    def server_port(self) -> int | None:
        return self._client.server_port

    @property
    def closed(self) -> bool:
        return self._closed

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """See :meth:`LMStudioClient.chat`."""
        self._check_open()
        coro = self._client.chat(
            messages, model=model, max_tokens=max_tokens, temperature=temperature, extra=extra
        )
        return self._runner.run(coro, timeout=self._guard)

    def chat_via_stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """See :meth:`LMStudioClient.chat_via_stream`."""
        self._check_open()
        coro = self._client.chat_via_stream(
            messages, model=model, max_tokens=max_tokens, temperature=temperature, extra=extra
        )
        return self._runner.run(coro, timeout=self._guard)

    def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        idle_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Iterator[StreamChunk]:
        """See :meth:`LMStudioClient.stream_chat`; each chunk is fetched on the private loop.

        Closing the iterator early (``break``) closes the HTTP response.
        """
        self._check_open()
        agen = self._client.stream_chat(
            messages,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=extra,
            idle_timeout=idle_timeout,
            timeout=timeout,
        )
        try:
            while True:
                try:
                    chunk = self._runner.run(_anext(agen), timeout=self._chunk_guard)
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            if self._runner.is_running:
                self._runner.run(agen.aclose(), timeout=self._chunk_guard)

    def list_models(self) -> list[str]:
        """See :meth:`LMStudioClient.list_models`."""
        self._check_open()
        return self._runner.run(self._client.list_models(), timeout=self._guard)

    def health(self) -> HealthStatus:
        """See :meth:`LMStudioClient.health`."""
        self._check_open()
        return self._runner.run(self._client.health(), timeout=self._health_guard)

    def check_available(self) -> bool:
        """See :meth:`LMStudioClient.check_available`."""
        return self.health().available

    def close(self) -> None:
        """Close the client and stop the private loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._runner.is_running:
                self._runner.run(self._client.close(), timeout=GUARD_SLACK_S)
        finally:
            self._runner.stop()

    def __enter__(self) -> SyncLMStudioClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("SyncLMStudioClient is closed", what="SyncLMStudioClient")


async def _anext(agen: AsyncIterator[StreamChunk]) -> StreamChunk:
    return await agen.__anext__()
