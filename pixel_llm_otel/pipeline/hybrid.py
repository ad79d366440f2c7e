"""``HybridPixelLLM``: a torch vision encoder plus an OpenAI-compatible LLM, made resilient.

    llm = HybridPixelLLM(lm_studio_url="http://localhost:1234/v1", lm_studio_model="qwen2-vl")
    caption = llm.generate(image)                      # str, or None when nothing could be made
    result = await llm.generate_result_async(image)    # text, source, attempts, usage, trace id

Every method exists in a sync and an async form over one async core
(:mod:`pixel_llm_otel.pipeline._core`). The sync form runs the coroutine on a private event-loop
thread owned by the instance, so it works in scripts, worker threads and inside a running loop
(Jupyter) alike.

Bad input (a non-tensor, wrong dtype or shape, NaN, values outside 0..1, an oversized prompt, a
negative ``max_tokens``) raises :class:`~pixel_llm_otel.errors.ValidationError` whatever
``raise_on_failure`` says: it is a caller bug, not an outage, and no fallback can fix it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._loop_thread import LoopThread
from ..errors import ClientClosedError, ErrorCode, ValidationError
from ._batch import caption_batch, check_batch
from ._core import Encoded, PipelineCore
from ._prompt import CallOptions, check_call, check_images
from .config import DEFAULT_MODEL, DEFAULT_URL, ErrorConfig, HybridConfig
from .result import GenerateResult

if TYPE_CHECKING:
    import torch

    from ..monitoring import StructuredLogger
    from ..protocols import ImageEncoder
    from ..resilience.circuit_breaker import CircuitBreaker
    from ..resilience.fallback import FallbackManager
    from ..resilience.retry import RetryPolicy

__all__ = ["HybridPixelLLM"]

_CONFIG_CODE = ErrorCode.VALIDATION_CONFIG

T = TypeVar("T")


class HybridPixelLLM:
    """Caption images with a vision encoder and an LLM server, degrading gracefully.

    The positional arguments are the original constructor's; the rest are keyword-only (see
    :class:`~pixel_llm_otel.pipeline.HybridConfig` for each option). ``encoder`` injects a
    ready encoder (shared between instances, or a fake in tests); ``clock`` and ``async_sleep``
    drive the breaker, retry and cache timing (tests inject fakes); ``logger`` receives the
    failure log lines (default: a shared JSON logger on stderr, WARNING and up).
    """

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
        config: HybridConfig | None = None,
        encoder: ImageEncoder | None = None,
        clock: Callable[[], float] = time.monotonic,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: StructuredLogger | None = None,
    ) -> None:
        flat = dict(
            lm_studio_url=lm_studio_url,
            lm_studio_model=lm_studio_model,
            device=device,
            encoder_type=encoder_type,
            encoder_config=encoder_config,
            max_tokens=max_tokens,
            temperature=temperature,
            use_async=use_async,
            cache_size=cache_size,
            error_config=error_config,
            api_key=api_key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            total_timeout=total_timeout,
            provider_name=provider_name,
            send_image=send_image,
            max_concurrency=max_concurrency,
            max_prompt_chars=max_prompt_chars,
            breaker_name=breaker_name,
        )
        config = _configure(config, flat)
        self._core = PipelineCore(
            config, encoder=encoder, clock=clock, async_sleep=async_sleep, logger=logger
        )
        self._runner = LoopThread(name=f"pixel-llm-{config.breaker_name}")
        self._closed = False
        self._defaults = check_call(config.call)

    @classmethod
    def from_config(cls, config: HybridConfig, **runtime: Any) -> HybridPixelLLM:
        """An instance from a ready :class:`HybridConfig` (``runtime``: encoder, clock, ...)."""
        return cls(config=config, **runtime)

    def __repr__(self) -> str:
        c = self._core.config
        return (
            f"HybridPixelLLM(url={c.lm_studio_url!r}, model={c.lm_studio_model!r}, "
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

    # --- generate ---------------------------------------------------------------------------
    async def generate_result_async(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> GenerateResult:
        """Caption ``images`` (CHW, or BCHW for one caption of several images).

        Returns the result whatever happened to the LLM call; raises ``ValidationError`` for bad
        input and, with ``raise_on_failure``, the typed error (``RetryExhausted``,
        ``CircuitBreakerOpen``, ``APIError``, ``EncoderError``...) when no fallback served.
        """
        self._check_open()
        try:
            options = self._options(
                prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
            )
            batch = check_images(images)
        except ValidationError as exc:
            self._core.reject(exc)  # still one generate span and one counted request
            raise
        return await self._core.caption(batch, options)

    async def generate_async(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> str | None:
        """The caption text (``None`` when nothing could be produced); see
        :meth:`generate_result_async`."""
        result = await self.generate_result_async(
            images,
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            raise_on_failure=raise_on_failure,
            deadline=deadline,
            timeout=timeout,
        )
        return result.text

    def generate_result(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> GenerateResult:
        """Sync :meth:`generate_result_async`."""
        return self._run(
            self.generate_result_async(
                images,
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                raise_on_failure=raise_on_failure,
                deadline=deadline,
                timeout=timeout,
            )
        )

    def generate(
        self,
        images: torch.Tensor,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> str | None:
        """Sync :meth:`generate_async`: the caption, or ``None``."""
        return self._run(
            self.generate_async(
                images,
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                raise_on_failure=raise_on_failure,
                deadline=deadline,
                timeout=timeout,
            )
        )

    async def generate_encoded_async(
        self,
        encoded: Encoded,
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        raise_on_failure: bool = False,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> GenerateResult:
        """Like :meth:`generate_result_async` for an image already passed through
        :meth:`encode_async` (several prompts for one image; benchmarks of the HTTP path)."""
        self._check_open()
        if not isinstance(encoded, Encoded):
            raise ValidationError(
                field="encoded", value=encoded, expected="the Encoded returned by encode_async()"
            )
        options = self._options(
            prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
        )
        return await self._core.caption(None, options, encoded=encoded, batch_size=1)

    async def encode_async(self, images: torch.Tensor) -> Encoded:
        """Validate and encode ``images`` once (the feature summary, content digest and, with
        ``send_image``, PNG data); reuse the result with :meth:`generate_encoded_async`."""
        self._check_open()
        return (await self._core.encode(check_images(images), per_image=False))[0]

    # --- batches ----------------------------------------------------------------------------
    async def generate_batch_results_async(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> list[GenerateResult]:
        """One result per image (a BCHW tensor or a sequence of same-sized CHW tensors), in order.

        One encoder pass for all images; captions run concurrently (at most
        ``max_concurrency`` requests in flight); one image's failure never fails the others.
        """
        self._check_open()
        options = self._options(prompt, max_tokens, temperature, False, deadline, timeout)
        return await caption_batch(self._core, check_batch(images), options)

    async def generate_batch_async(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> list[str | None]:
        """One caption (or ``None``) per image; see :meth:`generate_batch_results_async`."""
        results = await self.generate_batch_results_async(
            images,
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            deadline=deadline,
            timeout=timeout,
        )
        return [r.text for r in results]

    def generate_batch_results(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> list[GenerateResult]:
        """Sync :meth:`generate_batch_results_async`."""
        return self._run(
            self.generate_batch_results_async(
                images,
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                deadline=deadline,
                timeout=timeout,
            )
        )

    def generate_batch(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> list[str | None]:
        """Sync :meth:`generate_batch_async`."""
        return self._run(
            self.generate_batch_async(
                images,
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                deadline=deadline,
                timeout=timeout,
            )
        )

    # --- health and metrics -----------------------------------------------------------------
    async def health_async(self) -> dict[str, Any]:
        """``server_reachable``, ``models``, ``breaker_state``, ``cache_size``, ``error``..."""
        self._check_open()
        return await self._core.health()

    def health(self) -> dict[str, Any]:
        """Sync :meth:`health_async`."""
        return self._run(self.health_async())

    async def check_lm_studio_available_async(self) -> bool:
        """Whether the server answers ``GET /models`` (does not touch the breaker)."""
        return bool((await self.health_async())["server_reachable"])

    def check_lm_studio_available(self) -> bool:
        """Sync :meth:`check_lm_studio_available_async`."""
        return self._run(self.check_lm_studio_available_async())

    def get_error_metrics(self) -> dict[str, Any]:
        """This instance's error and resilience counters, plus breaker, retry and cache state."""
        core = self._core
        summary = core.metrics.summary()
        snapshot = core.breaker.snapshot()
        summary["circuit_breaker"] = {
            "name": core.breaker.name,
            "state": core.breaker.state.value,
            "snapshot": _as_dict(snapshot),
        }
        summary["retry_stats"] = _as_dict(core.retry.stats())
        summary["fallback_stats"] = _as_dict(core.fallback.stats())
        return summary

    def reset_metrics(self) -> None:
        """Zero the counters (the breaker's state and the cache are left alone)."""
        self._core.metrics.reset()
        self._core.retry.reset_stats()

    # --- lifecycle --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every HTTP client (this loop's, the private loop's, other running loops') and
        stop the private loop thread. Idempotent. Calls in flight end in ``ClientClosedError``."""
        if self._closed:
            return
        self._closed = True
        await self._core.aclose()
        if self._runner.is_running:
            await asyncio.to_thread(self._runner.stop)
        await asyncio.to_thread(self._core.close_encoder)

    def close(self) -> None:
        """Sync :meth:`aclose` (from inside a running loop, prefer ``await aclose()``: that
        loop's client is then closed when the loop ends)."""
        if self._closed:
            return
        self._closed = True
        caller = _running_loop()
        if self._runner.is_running:
            self._runner.run(self._core.aclose(skip=caller), timeout=10.0)
            self._runner.stop()
        else:
            self._core.closed = True
            self._core.loops.close_threadsafe(skip=caller)
        self._core.close_encoder()

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

    # --- internals --------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
        self._check_open()
        return self._runner.run(coro)

    def _options(
        self,
        prompt: object,
        max_tokens: object,
        temperature: object,
        raise_on_failure: object,
        deadline: object = None,
        timeout: object = None,
    ) -> CallOptions:
        """The checked call options; all defaults (the common call) were checked once."""
        if (
            prompt is None
            and max_tokens is None
            and temperature is None
            and raise_on_failure is False
            and deadline is None
            and timeout is None
        ):
            return self._defaults
        return check_call(
            self.config.call, prompt, max_tokens, temperature, raise_on_failure, deadline, timeout
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("HybridPixelLLM is closed", what="HybridPixelLLM")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _configure(config: HybridConfig | None, flat: dict[str, Any]) -> HybridConfig:
    """The instance's config: ``config`` with the flat keywords that differ from their defaults
    applied, or one built from the flat keywords."""
    if config is None:
        return HybridConfig(**flat)
    if not isinstance(config, HybridConfig):
        raise ValidationError(
            field="config", value=config, expected="a HybridConfig or None", code=_CONFIG_CODE
        )
    given = {k: v for k, v in flat.items() if not _is_default(k, v)}
    if not given:
        return config
    sections: dict[str, Any] = {
        "client": config.client,
        "encoder": config.encoder,
        "errors": None if "error_config" in given else config.errors,
        "call": config.call,
        "provider_name": config.provider_name,
        "breaker_name": config.breaker_name,
        "max_concurrency": config.max_concurrency,
        "cache_size": config.cache_size,
        "use_async": config.use_async,
    }
    sections.update({k: v for k, v in given.items() if k in sections})
    legacy = {k: v for k, v in given.items() if k not in sections}
    return HybridConfig(**sections, **legacy)


_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(HybridPixelLLM.__init__).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def _is_default(name: str, value: object) -> bool:
    default = _DEFAULTS.get(name, inspect.Parameter.empty)
    return value is default or (type(value) is type(default) and value == default)


def _as_dict(value: object) -> dict[str, Any]:
    """A dataclass snapshot as a JSON-friendly dict (enums by value)."""
    import dataclasses
    import enum

    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        out[f.name] = item.value if isinstance(item, enum.Enum) else item
    return out
