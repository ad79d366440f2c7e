"""Streamed captions: :class:`AsyncCaptionStream` (the real work) and :class:`CaptionStream`.

One stream = encode -> breaker admission -> retry(open the HTTP stream and read to the first
content chunk) -> the remaining chunks as the caller asks for them. The resilience rules:

- Until the first content chunk the call is retried, refused by the breaker and served by the
  fallback chain exactly like a non-streamed one (a 200 with an empty event stream or a stream
  cut before ``[DONE]`` counts as a failed attempt). A fallback's text is the stream's one chunk.
- After it, a failure ends the stream with :class:`~pixel_llm_otel.errors.StreamInterrupted`:
  text already yielded cannot be taken back, so nothing is retried.
- ``timeout`` (default: the retry deadline) bounds the whole stream, attempts and backoff
  included; ``idle_timeout`` (default: ``read_timeout``) bounds each gap between events.
- The breaker permit taken at admission is held until the stream ends: completed = success,
  interrupted = failure, closed / cancelled / abandoned = neither (a half-open probe slot is
  released either way).

Every way a stream ends goes through :meth:`AsyncCaptionStream._end`, which runs once: it settles
the breaker, ends the observer's spans and fixes the :class:`StreamResult`. Exhaustion, an error,
``aclose()``, a context-manager exit, cancellation, the garbage collector (``__del__``) and the
interpreter's exit (``atexit``) all reach it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, cast

from .. import hooks
from ..errors import ClientClosedError, StreamInterrupted
from ._cache_key import CacheKey
from ._core import closed_error
from ._prompt import CallOptions, build_messages
from ._stream_open import Facts, open_stream, stream_budget
from ._stream_sync import track, untrack
from .result import Source, StreamResult

if TYPE_CHECKING:
    import torch

    from ..client import StreamChunk
    from ..resilience.circuit_breaker import _Guard
    from ._core import PipelineCore

__all__ = ["AsyncCaptionStream"]

#: What settles a breaker permit without counting (closed, cancelled, abandoned streams).
_NEUTRAL = GeneratorExit()


class AsyncCaptionStream:
    """``async for chunk in stream`` yields the caption's text chunks; ``.result`` at the end.

    Use it as ``async with llm.stream_async(image) as stream:`` to guarantee cleanup; without
    the context manager, a stream dropped before its end is closed by the garbage collector (and
    reported ``abandoned``).
    """

    def __init__(
        self,
        core: PipelineCore,
        images: torch.Tensor,
        options: CallOptions,
        *,
        idle_timeout: float | None,
    ) -> None:
        self._core = core
        self._images = images
        self._options = options
        self._idle_timeout = idle_timeout
        self._scope: hooks.StreamScope | None = None
        self._chunks: AsyncIterator[StreamChunk] | None = None
        self._permit: _Guard | None = None
        self.facts = Facts()
        self._parts: list[str] = []
        self.attempts = 0
        self._started = 0.0
        self._first_at: float | None = None
        self._source: Source | None = None
        self._digest: str | None = None
        self._result: StreamResult | None = None
        self._lock = threading.Lock()
        track(self)

    # --- public surface ------------------------------------------------------------------
    @property
    def result(self) -> StreamResult | None:
        """The final result once the stream has ended, else ``None``."""
        return self._result

    @property
    def text(self) -> str:
        """The text yielded so far."""
        return "".join(self._parts)

    def __aiter__(self) -> AsyncCaptionStream:
        return self

    async def __anext__(self) -> str:
        if self._result is not None:
            raise StopAsyncIteration
        try:
            if self._scope is None:
                text = await self._start()
            else:
                text = await self._next()
        except asyncio.CancelledError as exc:
            self._end("cancelled", error=None if self._parts else exc)
            raise
        self._parts.append(text)
        return text

    async def aclose(self) -> None:
        """Stop reading: the stream ends ``closed`` (nothing is counted against the server)."""
        self._end("closed")
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> AsyncCaptionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if self._result is None:
            self._end("abandoned")

    # --- the steps -----------------------------------------------------------------------
    async def _start(self) -> str:
        core, options = self._core, self._options
        config = core.config
        self._started = time.perf_counter()
        observer = hooks.get_observer()
        scope = self._scope = observer.stream(
            model=config.lm_studio_model,
            provider=config.provider_name,
            batch_size=int(self._images.shape[0]),
        )
        loop = asyncio.get_running_loop()
        budget = stream_budget(core, options)
        deadline = None if budget is None else loop.time() + budget
        try:
            with scope.activate():
                encoded = (await core.encode(self._images, per_image=False))[0]
            self._digest = encoded.digest
            messages = build_messages(options.prompt, encoded.summary, encoded.image_urls)
            if observer is not hooks.NOOP_OBSERVER:
                request = replace(core._request_info(options, messages), stream=True)
                scope.start_chat(request)
            with scope.activate():
                permit = core.breaker.guard()
                permit.__enter__()
                self._permit = permit
                try:
                    chunks, first = await open_stream(
                        core, messages, options, self,
                        idle_timeout=self._idle_timeout, deadline=deadline,
                    )  # fmt: skip
                except Exception as exc:
                    self._permit = None
                    permit.__exit__(type(exc), exc, exc.__traceback__)
                    raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if core.closed or isinstance(exc, ClientClosedError):
                closed = closed_error(exc)
                self._end("completed", error=closed)
                raise closed from exc
            return await self._fall_back(exc, self._digest)
        self._chunks = chunks
        if first is None:  # completed without any content (e.g. max_tokens=0)
            self._end("completed")
            raise StopAsyncIteration
        self._first_at = time.perf_counter()
        scope.first_chunk()
        return first

    async def _next(self) -> str:
        chunks = self._chunks
        if chunks is None:
            raise StopAsyncIteration
        facts, scope = self.facts, self._scope
        try:
            while True:
                chunk = await chunks.__anext__()
                facts.absorb(chunk)
                text = chunk.text
                if text:
                    if scope is not None:
                        scope.chunk()
                    return text
        except StopAsyncIteration:
            self._chunks = None
            self._end("completed")
            raise
        except StreamInterrupted as exc:
            self._chunks = None
            self._end("interrupted", error=exc)
            raise
        except Exception as exc:  # not expected from the client after content; never swallowed
            self._chunks = None
            error = StreamInterrupted(chunks=len(self._parts), cause=exc)
            self._end("interrupted", error=error)
            raise error from exc

    async def _fall_back(self, error: Exception, digest: str | None) -> str:
        core, options = self._core, self._options
        key = (
            None
            if digest is None
            else CacheKey(core.config.lm_studio_model, options.prompt, digest)
        )
        resolved = await core.fallback.resolve_async(key, error, model=core.config.lm_studio_model)
        text = None if resolved.value is None else str(resolved.value)
        if resolved.served and text is not None:
            self._source = cast(Source, resolved.strategy)
            self._end("completed", error=error, fallback=text)
            self._parts.append(text)
            return text
        self._end("completed", error=error)
        if options.raise_on_failure:
            raise error
        raise StopAsyncIteration

    # --- the one ending ------------------------------------------------------------------
    def _end(
        self, how: str, *, error: BaseException | None = None, fallback: str | None = None
    ) -> None:
        with self._lock:
            if self._result is not None:
                return
            served = fallback is not None
            text = fallback if served else ("".join(self._parts) if self._parts else None)
            source: Source | None = (
                self._source if served else ("llm" if text is not None else None)
            )
            if how == "completed" and not served and error is None:
                source, text = "llm", text or ""
            scope = self._scope
            self._result = StreamResult(
                text=text,
                source=source,
                attempts=self.attempts,
                usage=self.facts.usage,
                finish_reason=self.facts.finish_reason if how == "completed" else None,
                error=error,
                trace_id=scope.trace_id if scope is not None else None,
                latency=time.perf_counter() - self._started if self._started else 0.0,
                end=how,
                chunks=len(self._parts) + (1 if served else 0),
                time_to_first_chunk=self._ttfc(served),
            )
        untrack(self)
        permit, self._permit = self._permit, None
        if permit is not None:
            settle: BaseException | None
            if how == "completed":
                settle = None
            elif how == "interrupted" and error is not None:
                settle = error
            else:
                settle = _NEUTRAL
            permit.__exit__(None if settle is None else type(settle), settle, None)
        result = self._result
        if how == "completed" and source == "llm" and text and self._digest is not None:
            core = self._core
            model = core.config.lm_studio_model
            core.fallback.remember(CacheKey(model, self._options.prompt, self._digest), text)
        if scope is not None:
            outcome = result.outcome
            if (how == "completed" and source == "llm") or (self._parts and not served):
                scope.response(self._response_info(text))
            scope.end(
                how=how,
                outcome=outcome,
                attempts=self.attempts,
                fallback_strategy=source if served else None,
                error=error,
            )

    def _ttfc(self, served: bool) -> float | None:
        if served:  # the fallback's chunk is handed over now
            return time.perf_counter() - self._started
        return None if self._first_at is None else self._first_at - self._started

    def _response_info(self, text: str | None) -> hooks.ChatResponseInfo:
        facts = self.facts
        usage = facts.reported
        return hooks.ChatResponseInfo(
            response_id=facts.response_id,
            response_model=facts.response_model,
            finish_reasons=(facts.finish_reason,) if facts.finish_reason else (),
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            output_text=text,
            cached_input_tokens=usage.cached_tokens if usage else None,
            reasoning_output_tokens=usage.reasoning_tokens if usage else None,
            image_input_tokens=usage.image_tokens if usage else None,
        )
