"""``AsyncHybridPixelLLM``: the pipeline's real methods, as coroutines.

    async with AsyncHybridPixelLLM(lm_studio_url="http://localhost:1234/v1") as llm:
        caption = await llm.generate(image)
        result = await llm.generate_result(image, deadline=5)

:class:`~pixel_llm_otel.pipeline.HybridPixelLLM` is the blocking facade of this class (same
methods, run on a private loop thread), in the style of httpx's ``Client`` / ``AsyncClient``. An
instance may be used from any event loop, several at once and one ``asyncio.run`` after another:
each loop gets its own HTTP client, closed when that loop ends.

Bad input raises :class:`~pixel_llm_otel.errors.ValidationError` whatever ``raise_on_failure``
says; a closed instance raises :class:`~pixel_llm_otel.errors.ClientClosedError` from every method.
Extension point: a new entry point is one ``async def`` here (validate with ``self._options`` /
``check_images``, then call ``self._core``) and one line in the facade (``blocking(...)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ValidationError
from ._batch import caption_batch, check_batch
from ._core import Encoded, PipelineCore
from ._prompt import CallOptions, check_call, check_idle_timeout, check_images
from ._status import PipelineHealth, PipelineMetrics
from ._stream import AsyncCaptionStream
from .config import HybridConfig
from .result import GenerateResult

if TYPE_CHECKING:
    import torch

    from ..monitoring import StructuredLogger
    from ..protocols import ImageEncoder
    from ..resilience.circuit_breaker import CircuitBreaker
    from ..resilience.fallback import FallbackManager
    from ..resilience.retry import RetryPolicy

__all__ = ["AsyncHybridPixelLLM"]

#: Distinct prompts whose checked call options are kept (cleared when full).
_PROMPTS_KEPT = 64

Seconds = float | timedelta


class AsyncHybridPixelLLM:
    """Caption images with a vision encoder and an LLM server, degrading gracefully (async).

    ``AsyncHybridPixelLLM(config=None, /, **settings)``: a ready :class:`HybridConfig`, and/or its
    keywords (sections such as ``client=`` and ``call=``, or the original flat ones such as
    ``lm_studio_url=``), all checked here. Runtime collaborators are keyword-only: ``encoder``
    injects a ready encoder (shared between instances, or a fake in tests); ``clock`` and
    ``async_sleep`` drive the breaker, retry and cache timing; ``logger`` receives the failure
    log lines (default: a shared JSON logger on stderr, WARNING and up).
    """

    def __init__(
        self,
        config: HybridConfig | None = None,
        /,
        *,
        encoder: ImageEncoder | None = None,
        clock: Callable[[], float] = time.monotonic,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: StructuredLogger | None = None,
        **settings: Any,
    ) -> None:
        config = merge_config(config, settings)
        self._core = PipelineCore(
            config, encoder=encoder, clock=clock, async_sleep=async_sleep, logger=logger
        )
        self._defaults = check_call(config.call)
        # The checked options of calls that give only a prompt, by prompt (bounded).
        self._by_prompt: dict[str, CallOptions] = {}

    @classmethod
    def from_config(cls, config: HybridConfig, **runtime: Any) -> AsyncHybridPixelLLM:
        """An instance from a ready :class:`HybridConfig` (``runtime``: encoder, clock, ...)."""
        return cls(config, **runtime)

    def __repr__(self) -> str:
        c = self._core.config
        return (
            f"{type(self).__name__}(url={c.lm_studio_url!r}, model={c.lm_studio_model!r}, "
            f"breaker={self._core.breaker.state.value})"
        )

    # --- parts ------------------------------------------------------------------------------
    @property
    def config(self) -> HybridConfig:
        return self._core.config

    @property
    def encoder(self) -> ImageEncoder:
        """The vision encoder (built once, at construction)."""
        return self._core.encoder

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        return self._core.breaker

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._core.retry

    @property
    def fallback(self) -> FallbackManager[str]:
        return self._core.fallback

    @property
    def closed(self) -> bool:
        return self._core.closed

    # --- generate ---------------------------------------------------------------------------
    async def generate_result(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
    ) -> GenerateResult:
        """Caption ``images`` (CHW, or BCHW for one caption of several images).

        Returns the result whatever happened to the LLM call; raises ``ValidationError`` for bad
        input and, with ``raise_on_failure``, the typed error (``RetryExhausted``,
        ``CircuitBreakerOpen``, ``APIError``, ``EncoderError``...) when no fallback served.
        ``deadline`` (alias ``timeout``; seconds or a timedelta) replaces the retry deadline for
        this call.
        """
        self._core.check_open()
        try:
            options = self._options(
                prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
            )
            batch = check_images(images)
        except ValidationError as exc:
            self._core.reject(exc)  # still one generate span and one counted request
            raise
        return await self._core.caption(batch, options)

    async def generate(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
    ) -> str | None:
        """The caption text (``None`` when nothing could be produced); see
        :meth:`generate_result`."""
        result = await self.generate_result(
            images,
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            raise_on_failure=raise_on_failure,
            deadline=deadline,
            timeout=timeout,
        )
        return result.text

    def stream(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
        idle_timeout: Seconds | None = None,
    ) -> AsyncCaptionStream:
        """Caption ``images`` as a stream of text chunks::

            async with llm.stream(image) as stream:
                async for chunk in stream:
                    show(chunk)
            result = stream.result  # text, source, attempts, usage, finish_reason, error, ...

        Retry, breaker admission and fallback apply until the first content chunk (a fallback's
        text is the one chunk); after it a failure raises ``StreamInterrupted`` and is not
        retried (see the error guide's streaming section). ``deadline`` (alias ``timeout``)
        bounds the whole stream (default: the retry deadline), ``idle_timeout`` each wait for
        more of it (default: ``read_timeout``). Not a coroutine: nothing happens until the first
        chunk is asked for. Bad input raises ``ValidationError`` here.
        """
        self._core.check_open()
        try:
            options = self._options(
                prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
            )
            batch = check_images(images)
            idle = check_idle_timeout(idle_timeout)
        except ValidationError as exc:
            self._core.reject(exc)  # still one generate span and one counted request
            raise
        return AsyncCaptionStream(self._core, batch, options, idle_timeout=idle)

    async def generate_encoded(
        self,
        encoded: Encoded,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
    ) -> GenerateResult:
        """Like :meth:`generate_result` for an image already passed through :meth:`encode`
        (several prompts for one image; benchmarks of the HTTP path)."""
        self._core.check_open()
        if not isinstance(encoded, Encoded):
            raise ValidationError(
                field="encoded", value=encoded, expected="the Encoded returned by encode()"
            )
        options = self._options(
            prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
        )
        return await self._core.caption(None, options, encoded=encoded, batch_size=1)

    async def encode(self, images: torch.Tensor) -> Encoded:
        """Validate and encode ``images`` once (the feature summary, content digest and, with
        ``send_image``, PNG data); reuse the result with :meth:`generate_encoded`."""
        self._core.check_open()
        return (await self._core.encode(check_images(images), per_image=False))[0]

    # --- batches ----------------------------------------------------------------------------
    async def generate_batch_results(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
    ) -> list[GenerateResult]:
        """One result per image (a BCHW tensor or a sequence of same-sized CHW tensors), in order.

        One encoder pass for all images; captions run concurrently (at most
        ``max_concurrency`` requests in flight); one image's failure never fails the others.
        ``deadline`` bounds each image's retries.
        """
        self._core.check_open()
        options = self._options(prompt, max_tokens, temperature, False, deadline, timeout)
        return await caption_batch(self._core, check_batch(images), options)

    async def generate_batch(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: Seconds | None = None,
        timeout: Seconds | None = None,
    ) -> list[str | None]:
        """One caption (or ``None``) per image; see :meth:`generate_batch_results`."""
        results = await self.generate_batch_results(
            images,
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            deadline=deadline,
            timeout=timeout,
        )
        return [r.text for r in results]

    # --- health and metrics -----------------------------------------------------------------
    async def health(self) -> PipelineHealth:
        """Server reachability and models, breaker state, cache size. Never raises for server
        trouble (does not touch the breaker)."""
        self._core.check_open()
        return await self._core.health()

    async def check_lm_studio_available(self) -> bool:
        """Whether the server answers ``GET /models`` (does not touch the breaker)."""
        return (await self.health()).server_reachable

    def get_error_metrics(self) -> PipelineMetrics:
        """This instance's error and resilience counters, plus breaker, retry and cache state."""
        core = self._core
        return PipelineMetrics.build(
            core.metrics.summary(),
            core.breaker.snapshot(),
            core.retry.stats(),
            core.fallback.stats(),
        )

    def reset_metrics(self) -> None:
        """Zero the counters (the breaker's state and the cache are left alone)."""
        self._core.metrics.reset()
        self._core.retry.reset_stats()

    # --- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the HTTP clients of every event loop this instance was used from that can
        still run a close, and the encoder it built. Idempotent. Calls in flight end in
        ``ClientClosedError``."""
        await self._aclose()
        await asyncio.to_thread(self._core.close_encoder)

    async def __aenter__(self) -> AsyncHybridPixelLLM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- for the facade ---------------------------------------------------------------------
    async def _aclose(self, *, skip: asyncio.AbstractEventLoop | None = None) -> None:
        """Refuse new calls, close the clients (``skip``: a loop blocked by the caller)."""
        await self._core.aclose(skip=skip)

    def _close_threadsafe(self, *, skip: asyncio.AbstractEventLoop | None = None) -> None:
        """Refuse new calls, close the clients of loops running on other threads."""
        self._core.closed = True
        self._core.loops.close_threadsafe(skip=skip)

    def _close_encoder(self) -> None:
        self._core.close_encoder()

    def _options(
        self,
        prompt: object,
        max_tokens: object,
        temperature: object,
        raise_on_failure: object,
        deadline: object,
        timeout: object,
    ) -> CallOptions:
        """The checked call options; all defaults (the common call) were checked once, and a
        call that gives only a prompt reuses the options of the last calls with that prompt."""
        if (
            max_tokens is None
            and temperature is None
            and raise_on_failure is False
            and deadline is None
            and timeout is None
        ):
            if prompt is None:
                return self._defaults
            if type(prompt) is str:
                found = self._by_prompt.get(prompt)
                if found is None:
                    found = check_call(self.config.call, prompt)  # raises for a bad prompt
                    if len(self._by_prompt) >= _PROMPTS_KEPT:
                        self._by_prompt.clear()
                    self._by_prompt[prompt] = found
                return found
        return check_call(
            self.config.call, prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
        )


def merge_config(config: HybridConfig | None, settings: Mapping[str, Any]) -> HybridConfig:
    """``config`` with ``settings`` (HybridConfig keywords) applied, or a config from them."""
    if config is None:
        return HybridConfig(**settings)
    if not isinstance(config, HybridConfig):
        raise ValidationError(
            field="config",
            value=config,
            expected="a HybridConfig or None",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    if not settings:
        return config
    base: dict[str, Any] = {
        "client": config.client,
        "encoder": config.encoder,
        "errors": None if "error_config" in settings else config.errors,
        "call": config.call,
        "provider_name": config.provider_name,
        "breaker_name": config.breaker_name,
        "max_concurrency": config.max_concurrency,
        "cache_size": config.cache_size,
        "use_async": config.use_async,
    }
    base.update({k: v for k, v in settings.items() if k in base})
    return HybridConfig(**base, **{k: v for k, v in settings.items() if k not in base})
