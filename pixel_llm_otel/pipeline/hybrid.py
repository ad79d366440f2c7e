"""``HybridPixelLLM``: the blocking facade of :class:`AsyncHybridPixelLLM` (and its original API).

    llm = HybridPixelLLM(lm_studio_url="http://localhost:1234/v1", lm_studio_model="qwen2-vl")
    caption = llm.generate(image)                      # str, or None when nothing could be made
    result = await llm.generate_result_async(image)    # text, source, attempts, usage, trace id

The real methods live in :class:`~pixel_llm_otel.pipeline.AsyncHybridPixelLLM`; this class lists
them once each through the package's one sync-facade mechanism (:mod:`pixel_llm_otel._sync_facade`):
``generate = blocking(AsyncHybridPixelLLM.generate)`` runs the coroutine on a private event-loop
thread owned by the instance (scripts, worker threads and Jupyter alike), and the original
``*_async`` names await the same coroutines on the caller's own loop. Nothing is copied by hand.

Bad input (a non-tensor, wrong dtype or shape, NaN, values outside 0..1, an oversized prompt, a
negative ``max_tokens``) raises :class:`~pixel_llm_otel.errors.ValidationError` whatever
``raise_on_failure`` says: it is a caller bug, not an outage, and no fallback can fix it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from .._sync_facade import SyncFacade, blocking, delegate
from ..client._config import DEFAULT_MAX_RESPONSE_BYTES
from ._async import AsyncHybridPixelLLM, merge_config
from ._status import PipelineMetrics
from ._stream import AsyncCaptionStream
from ._stream_sync import CaptionStream
from .config import DEFAULT_MODEL, DEFAULT_URL, ErrorConfig, HybridConfig

if TYPE_CHECKING:
    from ..monitoring import StructuredLogger
    from ..protocols import ImageEncoder
    from ..resilience.circuit_breaker import CircuitBreaker
    from ..resilience.fallback import FallbackManager
    from ..resilience.retry import RetryPolicy

__all__ = ["HybridPixelLLM"]

#: How long close() waits for the private loop to close its clients.
_CLOSE_S = 10.0

_Async = AsyncHybridPixelLLM

P = ParamSpec("P")


def _blocking_stream(
    method: Callable[Concatenate[AsyncHybridPixelLLM, P], AsyncCaptionStream],
) -> Callable[Concatenate[HybridPixelLLM, P], CaptionStream]:
    """``HybridPixelLLM.stream``: the async stream, read chunk by chunk on the private loop
    (``with llm.stream(image) as s: for chunk in s: ...``; ``s.result`` at the end)."""

    @functools.wraps(method)
    def sync(self: HybridPixelLLM, /, *args: P.args, **kwargs: P.kwargs) -> CaptionStream:
        runner = self._loop_runner()
        return CaptionStream(runner, method(self._target, *args, **kwargs))

    return sync


def _same_stream(
    method: Callable[Concatenate[AsyncHybridPixelLLM, P], AsyncCaptionStream],
) -> Callable[Concatenate[HybridPixelLLM, P], AsyncCaptionStream]:
    """``HybridPixelLLM.stream_async``: the async stream itself, read on the caller's loop."""

    @functools.wraps(method)
    def forward(self: HybridPixelLLM, /, *args: P.args, **kwargs: P.kwargs) -> AsyncCaptionStream:
        return method(self._target, *args, **kwargs)

    return forward


class HybridPixelLLM(SyncFacade):
    """Caption images with a vision encoder and an LLM server, degrading gracefully.

    The positional arguments are the original constructor's; the rest are keyword-only (see
    :class:`~pixel_llm_otel.pipeline.HybridConfig` for each setting). ``config`` passes a ready
    ``HybridConfig`` (keywords left at their defaults do not override it). ``encoder`` injects a
    ready encoder (shared between instances, or a fake in tests); ``clock`` and ``async_sleep``
    drive the breaker, retry and cache timing (tests inject fakes); ``logger`` receives the
    failure log lines (default: a shared JSON logger on stderr, WARNING and up).

    Every method of :class:`AsyncHybridPixelLLM` exists here twice: blocking under its own name
    (``generate``), and async under the original ``*_async`` name (``generate_async``);
    ``stream`` gives a :class:`CaptionStream` (blocking iterator), ``stream_async`` the
    :class:`AsyncCaptionStream`.
    ``async_pipeline`` is the async object itself.
    """

    _target: AsyncHybridPixelLLM

    def __init__(
        self,
        lm_studio_url: str = DEFAULT_URL,
        lm_studio_model: str = DEFAULT_MODEL,
        device: str = "auto",
        encoder_type: str = "vit",
        encoder_config: Any = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
        use_async: bool = False,
        cache_size: int = 1024,
        error_config: ErrorConfig | Mapping[str, Any] | None = None,
        *,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        total_timeout: float = 120.0,
        provider_name: str = "lm_studio",
        send_image: bool = False,
        max_concurrency: int = 16,
        max_prompt_chars: int = 8000,
        breaker_name: str = "lm_studio",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        config: HybridConfig | None = None,
        encoder: ImageEncoder | None = None,
        clock: Callable[[], float] = time.monotonic,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: StructuredLogger | None = None,
    ) -> None:
        flat = {
            "lm_studio_url": lm_studio_url,
            "lm_studio_model": lm_studio_model,
            "device": device,
            "encoder_type": encoder_type,
            "encoder_config": encoder_config,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "use_async": use_async,
            "cache_size": cache_size,
            "error_config": error_config,
            "api_key": api_key,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "total_timeout": total_timeout,
            "provider_name": provider_name,
            "send_image": send_image,
            "max_concurrency": max_concurrency,
            "max_prompt_chars": max_prompt_chars,
            "breaker_name": breaker_name,
            "max_response_bytes": max_response_bytes,
        }
        if config is not None:  # only the keywords the caller changed override it
            flat = {k: v for k, v in flat.items() if not _is_default(k, v)}
        settings = merge_config(config, flat)
        pipeline = AsyncHybridPixelLLM(
            settings, encoder=encoder, clock=clock, async_sleep=async_sleep, logger=logger
        )
        super().__init__(pipeline, name=f"pixel-llm-{settings.breaker_name}")

    @classmethod
    def from_config(cls, config: HybridConfig, **runtime: Any) -> HybridPixelLLM:
        """An instance from a ready :class:`HybridConfig` (``runtime``: encoder, clock, ...)."""
        return cls(config=config, **runtime)

    def __repr__(self) -> str:
        return repr(self._target).replace(type(self._target).__name__, type(self).__name__, 1)

    # --- parts ------------------------------------------------------------------------------
    @property
    def async_pipeline(self) -> AsyncHybridPixelLLM:
        """The async pipeline this facade drives (use it directly from async code)."""
        return self._target

    @property
    def config(self) -> HybridConfig:
        return self._target.config

    @property
    def encoder(self) -> ImageEncoder:
        """The vision encoder (built once, at construction)."""
        return self._target.encoder

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        return self._target.circuit_breaker

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._target.retry_policy

    @property
    def fallback(self) -> FallbackManager[str]:
        return self._target.fallback

    # --- the API: blocking, on the private loop ---------------------------------------------
    generate = blocking(_Async.generate)
    generate_result = blocking(_Async.generate_result)
    generate_batch = blocking(_Async.generate_batch)
    generate_batch_results = blocking(_Async.generate_batch_results)
    health = blocking(_Async.health)
    check_lm_studio_available = blocking(_Async.check_lm_studio_available)

    # --- the API: async, on the caller's loop (the original names) ---------------------------
    generate_async = delegate(_Async.generate)
    generate_result_async = delegate(_Async.generate_result)
    generate_encoded_async = delegate(_Async.generate_encoded)
    encode_async = delegate(_Async.encode)
    generate_batch_async = delegate(_Async.generate_batch)
    generate_batch_results_async = delegate(_Async.generate_batch_results)
    health_async = delegate(_Async.health)
    check_lm_studio_available_async = delegate(_Async.check_lm_studio_available)

    # --- streams: the blocking one reads each chunk on the private loop ---------------------
    stream = _blocking_stream(_Async.stream)
    stream_async = _same_stream(_Async.stream)

    # --- no I/O ---------------------------------------------------------------------------
    def get_error_metrics(self) -> PipelineMetrics:
        """See :meth:`AsyncHybridPixelLLM.get_error_metrics`."""
        return self._target.get_error_metrics()

    def reset_metrics(self) -> None:
        """See :meth:`AsyncHybridPixelLLM.reset_metrics`."""
        self._target.reset_metrics()

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close every HTTP client (the private loop's, other running loops'), stop the private
        loop thread and the encoder it built. Idempotent. From inside a running loop, prefer
        ``await aclose()``: that loop's client is otherwise closed when the loop ends."""
        if self._closed:
            return
        caller = _running_loop()
        if not self._runner.is_running:
            self._target._close_threadsafe(skip=caller)
        self._close_facade(self._target._aclose(skip=caller), _CLOSE_S)
        self._target._close_encoder()

    async def aclose(self) -> None:
        """Async :meth:`close`: this loop's client too. Idempotent."""
        if self._closed:
            return
        await self._target._aclose()
        await asyncio.to_thread(self._close_facade, None, _CLOSE_S)
        await asyncio.to_thread(self._target._close_encoder)

    def __enter__(self) -> HybridPixelLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> HybridPixelLLM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(HybridPixelLLM.__init__).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def _is_default(name: str, value: object) -> bool:
    default = _DEFAULTS.get(name, inspect.Parameter.empty)
    return value is default or (type(value) is type(default) and value == default)
