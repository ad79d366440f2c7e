"""The async core: one caption = encode -> chat [breaker -> retry(HTTP attempt)] -> fallback.

Every public method of :class:`~pixel_llm_otel.pipeline.HybridPixelLLM`, sync or async, ends up
here. The core owns the resilience primitives and the encoder (built once); per event loop it keeps
one HTTP client (``LMStudioClient(config.client)``) and its request slots (``_slots``), because
aiohttp sessions and asyncio primitives belong to the loop that created them (the sync API runs on a
private loop thread, async callers on their own loop). Those are closed when their loop ends
(:class:`~pixel_llm_otel._per_loop.PerLoop`), so ``asyncio.run`` per call leaves nothing open.
Collaborators are called directly, typed by :mod:`pixel_llm_otel.protocols`.

Order of the guards: the circuit breaker wraps the whole retried call, so one caption counts as one
breaker call, an open breaker refuses before any attempt, and ``RetryExhausted`` counts as one
failure. The retry policy wraps one HTTP attempt, bounded by the client's timeouts and the
policy's deadline. Whatever fails after validation goes to the fallback chain; a caption from the
LLM is remembered by the cache fallback.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import hooks
from .._per_loop import PerLoop
from ..client import LMStudioClient
from ..client._payload import chat_request_body
from ..errors import ClientClosedError, ErrorCode, TimeoutError
from ..hooks import ChatRequestInfo
from ..monitoring import ErrorMetrics, StructuredLogger
from ..resilience._budget import pop as pop_budget
from ..resilience._budget import push as push_budget
from ..resilience.circuit_breaker import CircuitBreaker
from ..resilience.fallback import FallbackManager
from ..resilience.retry import RetryPolicy, remaining_budget
from ._cache_key import CacheKey, digest_inline, image_digests
from ._encoding import build_encoder, digest_or_none, encoder_error, png_data_urls
from ._logging import default_logger, log_failure
from ._prompt import CallOptions, build_messages
from ._slots import Slots
from ._status import PipelineHealth
from .result import GenerateResult, Usage

if TYPE_CHECKING:
    import torch

    from ..client import ChatCompletion
    from ..encoder import VisionEncoder
    from ..protocols import ImageEncoder
    from .config import HybridConfig

__all__ = ["Encoded", "PipelineCore", "closed_error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoded:
    """Everything one caption needs from its image(s), computed once (off the event loop, but for
    the content hash of a small image, which is cheaper inline than a thread hop).

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
_NO_USAGE = Usage()


@dataclass(slots=True)
class _Attempts:
    count: int = 0


@dataclass(slots=True)
class _LoopState:
    client: LMStudioClient
    slots: Slots


async def _close_state(state: _LoopState) -> None:
    await state.client.close()


def _abandon_state(state: _LoopState) -> None:
    state.client.abandon()


class PipelineCore:
    """The shared async implementation (not public: use ``HybridPixelLLM``)."""

    def __init__(
        self,
        config: HybridConfig,
        *,
        encoder: ImageEncoder | None = None,
        clock: Callable[[], float] = time.monotonic,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: StructuredLogger | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = logger if logger is not None else default_logger()
        errors = config.errors
        # The encoder this pipeline built (and closes); an injected one belongs to the caller.
        self._built: VisionEncoder | None = None
        if encoder is None:
            encoder = self._built = build_encoder(config)
        self.encoder: ImageEncoder = encoder
        self.breaker = CircuitBreaker(config.breaker_name, errors.circuit_breaker, clock=clock)
        self.retry = RetryPolicy(
            errors.retry, name=f"{config.breaker_name}.chat", clock=clock, async_sleep=async_sleep
        )
        self.fallback: FallbackManager[str] = FallbackManager(config.fallback_config, clock=clock)
        self.metrics = ErrorMetrics()
        for primitive in (self.breaker, self.retry, self.fallback):
            primitive.subscribe(self.metrics)
        self._server = config.server_address
        # Read once: the config is frozen, and these are properties over its sections.
        self._model = config.lm_studio_model
        self._provider = config.provider_name
        self._deadline = config.deadline
        self._encoder_type = config.encoder_type
        self._send_image = config.call.send_image
        self._device = str(self.encoder.device)
        self.loops: PerLoop[_LoopState] = PerLoop(self._new_state, _close_state, _abandon_state)
        self.closed = False

    # --- per-loop resources -------------------------------------------------------------
    def _new_state(self) -> _LoopState:
        return _LoopState(LMStudioClient(self.config.client), Slots(self.config.max_concurrency))

    def _state(self) -> _LoopState:
        if self.closed:
            raise ClientClosedError("HybridPixelLLM is closed", what="HybridPixelLLM")
        return self.loops.get()

    def check_open(self) -> None:
        """Raise :class:`ClientClosedError` once the pipeline is closed."""
        if self.closed:
            raise ClientClosedError("HybridPixelLLM is closed", what="HybridPixelLLM")

    async def aclose(self, *, skip: asyncio.AbstractEventLoop | None = None) -> None:
        """Refuse new calls; close the HTTP clients of every loop that can still run a close
        (``skip``: a loop blocked by the caller, which closes its own when it ends)."""
        self.closed = True
        await self.loops.aclose(skip=skip)

    def close_encoder(self) -> None:
        """Stop the encoder's worker thread if this pipeline built the encoder."""
        if self._built is not None:
            self._built.close()

    # --- encoding -----------------------------------------------------------------------
    async def encode(self, batch: torch.Tensor, *, per_image: bool) -> list[Encoded]:
        """Encode a BCHW batch in one encoder pass under an encode scope.

        ``per_image``: one :class:`Encoded` per image (batch calls); otherwise one for the
        whole batch (a single generate call over several images).
        """
        observer = hooks.get_observer()
        with observer.encode(
            encoder_type=self._encoder_type, device=self._device, batch_size=int(batch.shape[0])
        ) as scope:
            try:
                if digest_inline(batch):  # cheaper than a thread hop (and than gather's tasks)
                    digests = image_digests(batch, per_image)
                    encoder = self.encoder
                    features = await encoder.encode_async(batch)  # _summaries(), inline
                    summaries = [str(s) for s in encoder.summarize(features)]
                else:
                    summaries, digests = await asyncio.gather(
                        self._summaries(batch), asyncio.to_thread(image_digests, batch, per_image)
                    )
                urls = await png_data_urls(batch) if self._send_image else ()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = encoder_error(exc)
                scope.fail(error)
                raise error from exc
        if per_image:
            return [
                Encoded(summary=summary, digest=digests[i], image_urls=(urls[i],) if urls else ())
                for i, summary in enumerate(summaries)
            ]
        return [Encoded(summary=" | ".join(summaries), digest=digests[0], image_urls=tuple(urls))]

    async def _summaries(self, batch: torch.Tensor) -> list[str]:
        """One encoder pass (off the event loop, the encoder's job); one summary per image."""
        features = await self.encoder.encode_async(batch)
        return [str(s) for s in self.encoder.summarize(features)]

    def reject(self, error: BaseException) -> None:
        """Report a call refused before any work (bad input) as one failed generate unit."""
        observer = hooks.get_observer()
        with observer.generate(model=self._model, batch_size=1, provider=self._provider) as scope:
            scope.finish(outcome="error", attempts=0, error=error)

    # --- one caption --------------------------------------------------------------------
    def deadline_for(self, options: CallOptions) -> float | None:
        """The call's deadline: the per-call one, else the retry config's (``None``: none)."""
        return options.deadline if options.deadline is not None else self._deadline

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
        seconds = options.deadline if options.deadline is not None else self._deadline
        # deadline_scope(seconds), inline: the budget is opened first and closed last.
        budget = None if seconds is None else push_budget(self.clock() + seconds, self.clock)
        try:
            with observer.generate(
                model=self._model, batch_size=size, provider=self._provider
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
                    text, usage = await self._chat(options, ready, tries, observer)
                except asyncio.CancelledError as exc:
                    scope.finish(outcome="error", attempts=tries.count, error=exc)
                    raise
                except Exception as exc:
                    if self.closed or isinstance(exc, ClientClosedError):
                        closed = closed_error(exc)
                        scope.finish(outcome="error", attempts=tries.count, error=closed)
                        raise closed from exc
                    digest = ready.digest if ready is not None else await digest_or_none(images)
                    result = await self._fall_back(
                        digest, options, exc, tries.count, started, scope
                    )
                    if result.text is None and options.raise_on_failure:
                        raise exc
                    return result
                self.fallback.remember(CacheKey(self._model, options.prompt, ready.digest), text)
                scope.finish(outcome="success", attempts=tries.count)
                return GenerateResult(
                    text=text,
                    source="llm",
                    attempts=tries.count,
                    usage=usage,
                    trace_id=scope.trace_id,
                    latency=time.perf_counter() - started,
                )
        finally:
            if budget is not None:
                pop_budget(budget)

    async def _chat(
        self,
        options: CallOptions,
        encoded: Encoded,
        tries: _Attempts,
        observer: hooks.PipelineObserver,
    ) -> tuple[str, Usage]:
        """The chat scope: breaker -> retry -> one HTTP attempt (counted in ``tries``)."""
        state = self._state()
        post = state.client._post_chat
        model = self._model
        messages = build_messages(options.prompt, encoded.summary, encoded.image_urls)
        # Built and encoded once for every attempt: model, max_tokens and temperature were
        # checked with the config and the call's options, the messages are ours.
        body = chat_request_body(
            messages, model=model, max_tokens=options.max_tokens, temperature=options.temperature
        )

        def attempt() -> Awaitable[ChatCompletion]:
            tries.count += 1
            # The client's own coroutine, not wrapped in another: this runs once per request.
            return post(body, model)

        observed = observer is not hooks.NOOP_OBSERVER
        # The no-op observer reads nothing: it gets a shared placeholder, not this call's facts.
        request = self._request_info(options, messages) if observed else _UNOBSERVED
        with observer.chat(request) as chat_scope:
            slots = state.slots
            try:
                if not slots.try_acquire():
                    await _acquire_before_deadline(slots, self.config.max_concurrency)
                try:
                    # caption() opened this call's deadline scope: the retry runs within it.
                    completion = await self.breaker.call_async(
                        self.retry.run_async_in_scope, attempt
                    )
                finally:
                    slots.release()
            except BaseException as exc:
                chat_scope.attempts(tries.count)
                if isinstance(exc, Exception):
                    chat_scope.fail(exc)
                raise
            if observed:
                chat_scope.response(completion.to_response_info())
            chat_scope.attempts(tries.count)
        usage = completion.usage
        if usage is None:
            return completion.text, _NO_USAGE
        return completion.text, Usage(
            input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
        )

    def _request_info(
        self, options: CallOptions, messages: list[Mapping[str, Any]]
    ) -> ChatRequestInfo:
        host, port = self._server
        return ChatRequestInfo(
            model=self._model,
            provider=self._provider,
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
        model = self._model
        key = None if digest is None else CacheKey(model, options.prompt, digest)
        resolved = await self.fallback.resolve_async(key, error, model=self._model)
        strategy = resolved.strategy if resolved.served else None
        text = None if resolved.value is None else str(resolved.value)
        served = resolved.served and text is not None
        log_failure(self.log, error, attempts, strategy if served else None, self.config)
        if served:
            scope.finish(
                outcome="fallback", attempts=attempts, fallback_strategy=strategy, error=error
            )
        else:
            scope.finish(outcome="error", attempts=attempts, error=error)
        return GenerateResult(
            text=text if served else None,
            source=strategy if served else None,  # type: ignore[arg-type]
            attempts=attempts,
            error=error,
            trace_id=scope.trace_id,
            latency=time.perf_counter() - started,
        )

    # --- health -------------------------------------------------------------------------
    async def health(self) -> PipelineHealth:
        """Server reachability and models, breaker state, cache size. Never raises."""
        status = await self._state().client.health()
        return PipelineHealth(
            server_reachable=status.available,
            url=self.config.lm_studio_url,
            model=self._model,
            models=tuple(status.models),
            breaker_state=self.breaker.state.value,
            cache_size=self.fallback.stats().cache_entries,
            error=None if status.error is None else str(status.error),
        )


def closed_error(exc: Exception) -> ClientClosedError:
    """The error of a call the pipeline's close overtook (or that ran into a closed client)."""
    if isinstance(exc, ClientClosedError):
        return exc
    return ClientClosedError(
        "HybridPixelLLM was closed while the call ran", what="HybridPixelLLM", cause=exc
    )


async def _acquire_before_deadline(slots: Slots, count: int) -> None:
    """Wait for a request slot, but not past the call's deadline (a typed timeout then)."""
    left = remaining_budget()
    try:
        await slots.acquire(None if left is None else max(left, 0.0))
    except builtins.TimeoutError as exc:
        raise TimeoutError(
            f"no request slot (max_concurrency={count}) became free before the call's deadline",
            code=ErrorCode.TIMEOUT_TOTAL,
        ) from exc
