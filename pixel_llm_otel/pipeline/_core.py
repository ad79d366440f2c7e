"""The async core: one caption = encode -> chat [breaker -> retry(HTTP attempt)] -> fallback.

Every public method of :class:`~pixel_llm_otel.pipeline.HybridPixelLLM`, sync or async, ends up
here. The core owns the resilience primitives and the encoder (built once); per event loop it keeps
one HTTP client and one concurrency semaphore, because aiohttp sessions and asyncio primitives
belong to the loop that created them (the sync API runs on a private loop thread, async callers on
their own loop).

Order of the guards: the circuit breaker wraps the whole retried call, so one caption counts as one
breaker call, an open breaker refuses before any attempt, and ``RetryExhausted`` counts as one
failure. The retry policy wraps one HTTP attempt, bounded by the client's timeouts and the
policy's deadline. Whatever fails after validation goes to the fallback chain; a caption from the
LLM is remembered by the cache fallback.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import hooks
from ..errors import EncoderError, PixelLMError
from ..errors.classifier import DEFAULT_CLASSIFIER
from ..hooks import ChatRequestInfo
from ..monitoring import ErrorMetrics, StructuredLogger
from ..resilience.circuit_breaker import CircuitBreaker
from ..resilience.fallback import FallbackManager
from ..resilience.retry import RetryPolicy
from . import _adapters
from ._cache_key import CacheKey, image_digest, image_digests
from ._prompt import CallOptions, build_messages
from .result import GenerateResult, Usage

if TYPE_CHECKING:
    import torch

    from ..client import ChatCompletion
    from .config import HybridConfig

__all__ = ["Encoded", "PipelineCore"]


@dataclass(frozen=True, slots=True)
class Encoded:
    """Everything one caption needs from its image(s), computed once, off the event loop.

    ``summary``: the encoder's feature summary for the prompt; ``digest``: the image content
    hash of the fallback-cache key; ``image_urls``: PNG data URLs when ``send_image`` is on.
    """

    summary: str
    digest: str
    image_urls: tuple[str, ...] = ()


# What the no-op observer's chat scope is opened with (it records nothing).
_UNOBSERVED = ChatRequestInfo(
    model="", provider="", server_address="", server_port=None, max_tokens=None, temperature=None
)
_NO_USAGE = Usage(None, None)


@dataclass(slots=True)
class _Attempts:
    count: int = 0


@dataclass(slots=True)
class _LoopState:
    client: Any
    semaphore: asyncio.Semaphore


class PipelineCore:
    """The shared async implementation (not public: use ``HybridPixelLLM``)."""

    def __init__(
        self,
        config: HybridConfig,
        *,
        encoder: Any = None,
        clock: Callable[[], float] = time.monotonic,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: StructuredLogger | None = None,
    ) -> None:
        self.config = config
        self.log = logger if logger is not None else _default_logger()
        errors = config.error_config
        self._owns_encoder = encoder is None
        self.encoder = encoder if encoder is not None else _adapters.build_encoder(config)
        self.breaker = CircuitBreaker(config.breaker_name, errors.circuit_breaker, clock=clock)
        self.retry = RetryPolicy(
            errors.retry, name=f"{config.breaker_name}.chat", clock=clock, async_sleep=async_sleep
        )
        self.fallback: FallbackManager[str] = FallbackManager(config.fallback_config, clock=clock)
        self.metrics = ErrorMetrics()
        for primitive in (self.breaker, self.retry, self.fallback):
            primitive.subscribe(self.metrics)
        host, port = config.server_address
        self._server = (host, port)
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False

    # --- per-loop resources -------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = _LoopState(
                _adapters.build_client(self.config), asyncio.Semaphore(self.config.max_concurrency)
            )
            self._states[loop] = state
        return state

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop (others are closed by their own loop)."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await _adapters.close_client(state.client)

    def close_encoder(self) -> None:
        """Stop the encoder's worker thread if this pipeline built the encoder."""
        if self._owns_encoder:
            _adapters.close_encoder(self.encoder)

    # --- encoding -----------------------------------------------------------------------
    async def encode(self, batch: torch.Tensor, *, per_image: bool) -> list[Encoded]:
        """Encode a BCHW batch in one encoder pass under an encode scope.

        ``per_image``: one :class:`Encoded` per image (batch calls); otherwise one for the
        whole batch (a single generate call over several images).
        """
        observer = hooks.get_observer()
        with observer.encode(
            encoder_type=self.config.encoder_type,
            device=_adapters.encoder_device(self.encoder),
            batch_size=int(batch.shape[0]),
        ) as scope:
            try:
                summaries, digests = await asyncio.gather(
                    _adapters.encode_and_summarize(self.encoder, batch),
                    asyncio.to_thread(image_digests, batch, per_image),
                )
                urls = await _adapters.png_data_urls(batch) if self.config.send_image else ()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _encoder_error(exc)
                scope.fail(error)
                raise error from exc
        if per_image:
            return [
                Encoded(summary, digests[i], (urls[i],) if urls else ())
                for i, summary in enumerate(summaries)
            ]
        return [Encoded(" | ".join(summaries), digests[0], tuple(urls))]

    def reject(self, error: BaseException) -> None:
        """Report a call refused before any work (bad input) as one failed generate unit."""
        observer = hooks.get_observer()
        with observer.generate(
            model=self.config.lm_studio_model, batch_size=1, provider=self.config.provider_name
        ) as scope:
            scope.finish(outcome="error", attempts=0, error=error)

    # --- one caption --------------------------------------------------------------------
    async def caption(
        self,
        images: torch.Tensor | None,
        options: CallOptions,
        *,
        encoded: Encoded | BaseException | None = None,
        batch_size: int | None = None,
    ) -> GenerateResult:
        """One caption of ``images`` (BCHW, already validated) under a generate scope.

        ``encoded`` skips the encoder (batch items, pre-encoded calls, where ``images`` may be
        ``None``); an exception there is the
        shared encoder pass's failure, which goes straight to the fallback chain. Never raises
        for an outage: failures end in the fallback chain, and with ``raise_on_failure`` the
        typed error is raised when no fallback served. Callers validate the input first.
        """
        started = time.perf_counter()
        observer = hooks.get_observer()
        if batch_size is not None:
            size = batch_size
        else:
            size = int(images.shape[0]) if images is not None else 1
        with observer.generate(
            model=self.config.lm_studio_model, batch_size=size, provider=self.config.provider_name
        ) as scope:
            tries = _Attempts()
            ready = encoded if isinstance(encoded, Encoded) else None
            try:
                if isinstance(encoded, BaseException):
                    raise encoded
                if ready is None:
                    if images is None:
                        raise ValueError("caption() needs images or their Encoded form")
                    ready = (await self.encode(images, per_image=False))[0]
                text, usage = await self._chat(options, ready, tries)
            except asyncio.CancelledError as exc:
                scope.finish(outcome="error", attempts=tries.count, error=exc)
                raise
            except Exception as exc:
                digest = ready.digest if ready is not None else await _digest_or_none(images)
                result = await self._fall_back(digest, options, exc, tries.count, started, scope)
                if result.text is None and options.raise_on_failure:
                    raise exc
                return result
            model = self.config.lm_studio_model
            self.fallback.remember(CacheKey(model, options.prompt, ready.digest), text)
            scope.finish(outcome="success", attempts=tries.count)
            return GenerateResult(
                text, "llm", tries.count, usage, None, scope.trace_id, time.perf_counter() - started
            )

    async def _chat(
        self, options: CallOptions, encoded: Encoded, tries: _Attempts
    ) -> tuple[str, Usage]:
        """The chat scope: breaker -> retry -> one HTTP attempt (counted in ``tries``)."""
        state = self._state()
        client = state.client
        model = self.config.lm_studio_model
        messages = build_messages(options.prompt, encoded.summary, encoded.image_urls)

        def attempt() -> Awaitable[ChatCompletion]:
            tries.count += 1
            return _adapters.chat(client, messages, model, options.max_tokens, options.temperature)

        observer = hooks.get_observer()
        observed = observer is not hooks.NOOP_OBSERVER
        # The no-op observer reads nothing: it gets a shared placeholder, not this call's facts.
        request = self._request_info(options, messages) if observed else _UNOBSERVED
        with observer.chat(request) as chat_scope:
            semaphore = state.semaphore
            try:
                await semaphore.acquire()  # what ``async with`` does, minus two coroutines
                try:
                    completion = await self.breaker.call_async(self.retry.call_async, attempt)
                finally:
                    semaphore.release()
            except BaseException as exc:
                chat_scope.attempts(tries.count)
                if isinstance(exc, Exception):
                    chat_scope.fail(exc)
                raise
            if observed:
                chat_scope.response(_adapters.response_info(completion))
            chat_scope.attempts(tries.count)
        usage = completion.usage
        if usage is None:
            return completion.text, _NO_USAGE
        return completion.text, Usage(usage.prompt_tokens, usage.completion_tokens)

    def _request_info(
        self, options: CallOptions, messages: list[Mapping[str, Any]]
    ) -> ChatRequestInfo:
        host, port = self._server
        return ChatRequestInfo(
            model=self.config.lm_studio_model,
            provider=self.config.provider_name,
            server_address=host,
            server_port=port,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            messages=messages,
        )

    async def _fall_back(
        self,
        digest: str | None,
        options: CallOptions,
        error: Exception,
        attempts: int,
        started: float,
        scope: hooks.GenerateScope,
    ) -> GenerateResult:
        model = self.config.lm_studio_model
        key = None if digest is None else CacheKey(model, options.prompt, digest)
        resolved = await self.fallback.resolve_async(key, error, model=self.config.lm_studio_model)
        strategy = resolved.strategy if resolved.served else None
        text = None if resolved.value is None else str(resolved.value)
        served = resolved.served and text is not None
        _log_failure(self.log, error, attempts, strategy if served else None, self.config)
        if served:
            scope.finish(
                outcome="fallback", attempts=attempts, fallback_strategy=strategy, error=error
            )
        else:
            scope.finish(outcome="error", attempts=attempts, error=error)
        return GenerateResult(
            text if served else None,
            strategy if served else None,  # type: ignore[arg-type]
            attempts,
            None,
            error,
            scope.trace_id,
            time.perf_counter() - started,
        )

    # --- health -------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """Server reachability and models, breaker state, cache size. Never raises."""
        reachable, models, error = await _adapters.health(self._state().client)
        return {
            "server_reachable": reachable,
            "url": self.config.lm_studio_url,
            "model": self.config.lm_studio_model,
            "models": models,
            "breaker_state": self.breaker.state.value,
            "cache_size": _adapters.cache_entries(self.fallback),
            "error": error,
        }


def _encoder_error(exc: Exception) -> PixelLMError:
    """Translate an encoder failure; torch's out-of-memory and device errors keep their codes."""
    if isinstance(exc, PixelLMError):
        return exc
    error = DEFAULT_CLASSIFIER.to_error(exc)
    if isinstance(error, EncoderError):
        return error
    return EncoderError(f"the image encoder failed: {type(exc).__name__}: {exc}", cause=exc)


async def _digest_or_none(images: torch.Tensor | None) -> str | None:
    """The content digest for the fallback key, or ``None`` (a failure must not hide the error)."""
    if images is None:
        return None
    try:
        return await asyncio.to_thread(image_digest, images)
    except Exception:
        return None


_shared_logger: StructuredLogger | None = None


def _default_logger() -> StructuredLogger:
    """One JSON logger (stderr, WARNING and up) shared by pipelines built without a logger."""
    global _shared_logger
    if _shared_logger is None:
        # stream=None: whatever sys.stderr is when a record is written
        _shared_logger = StructuredLogger("pixel_llm_otel.pipeline", level="WARNING")
    return _shared_logger


def _log_failure(
    log: StructuredLogger,
    error: BaseException,
    attempts: int,
    strategy: str | None,
    config: HybridConfig,
) -> None:
    """WARNING when a fallback served (degraded), ERROR when the caller gets nothing."""
    info = DEFAULT_CLASSIFIER.classify(error)
    context = {
        "error_type": info.error_type,
        "error_category": str(info.category),
        "attempts": attempts,
        "fallback_strategy": strategy,
        "model": config.lm_studio_model,
        "url": config.lm_studio_url,
    }
    if strategy is not None:
        log.warning(
            "generate degraded: %s; served by the %s fallback",
            error,
            strategy,
            error_code=info.code,
            context=context,
        )
    else:
        log.error(
            "generate failed after %d attempt(s): %s",
            attempts,
            error,
            error_code=info.code,
            context=context,
        )
