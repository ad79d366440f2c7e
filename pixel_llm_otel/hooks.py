"""Pipeline hooks: how the pipeline tells an observer what it is doing, without knowing who listens.

The pipeline (``HybridPixelLLM``) opens a scope for each unit of work and reports typed facts into
it. The telemetry layer installs an observer that turns scopes into spans and metrics with the
names of the telemetry contract; without it the no-op observer costs one attribute lookup and a
shared, stateless context manager per scope. Nothing here imports OpenTelemetry.

Scopes are synchronous context managers, so they work the same in sync and async code: an async
caller enters and leaves them in one task, and no ``await`` happens inside ``__enter__`` or
``__exit__``. An exception that escapes a scope is recorded on it; errors handled inside the scope
are reported with ``fail()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "NOOP_OBSERVER",
    "STREAM_ENDS",
    "ChatRequestInfo",
    "ChatResponseInfo",
    "ChatScope",
    "EncodeScope",
    "GenerateScope",
    "HttpObserver",
    "HttpScope",
    "NoopObserver",
    "PipelineObserver",
    "StreamScope",
    "get_http_observer",
    "get_observer",
    "set_http_observer",
    "set_observer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequestInfo:
    """What the pipeline is about to ask the LLM server."""

    model: str
    provider: str  # gen_ai.provider.name, e.g. "lm_studio"
    server_address: str
    server_port: int | None
    max_tokens: int | None
    temperature: float | None
    stream: bool = False
    # The chat messages; only ever exported when content capture is opted in.
    messages: Sequence[Mapping[str, Any]] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponseInfo:
    """What the LLM server answered (successful attempt only)."""

    response_id: str | None
    response_model: str | None
    finish_reasons: tuple[str, ...]
    input_tokens: int | None
    output_tokens: int | None
    # The generated text; only ever exported when content capture is opted in.
    output_text: str | None = field(default=None, repr=False)
    # Usage details, when the server reports them (OpenAI's ``*_tokens_details``).
    cached_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    image_input_tokens: int | None = None


class GenerateScope(Protocol):
    """One ``pixel_llm.generate`` unit (one image's caption)."""

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id (32 hex chars) when tracing is on, else ``None``."""

    def finish(
        self,
        *,
        outcome: str,  # "success" | "fallback" | "error"
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,  # the error behind a fallback or the failure
    ) -> None:
        """Report the result the caller gets. Called at most once."""


class EncodeScope(Protocol):
    """One ``pixel_llm.encode`` unit (one encoder pass over a batch)."""

    def fail(self, error: BaseException) -> None: ...


class ChatScope(Protocol):
    """The logical GenAI chat operation: every attempt and backoff of one LLM request."""

    def response(self, info: ChatResponseInfo) -> None: ...

    def attempts(self, count: int) -> None: ...

    def fail(self, error: BaseException) -> None: ...


#: How a stream can end (``pixel_llm.stream.end``): ``completed`` (to ``[DONE]``, or the
#: fallback's one chunk), ``closed`` (the caller stopped early: break + close, ``close()``, context
#: exit), ``cancelled`` (the consuming task was cancelled), ``interrupted`` (server or network
#: failure after the first content chunk), ``abandoned`` (dropped unfinished to the garbage
#: collector, or still open at interpreter exit).
STREAM_ENDS = ("completed", "closed", "cancelled", "interrupted", "abandoned")


class StreamScope(Protocol):
    """One streamed call: ``pixel_llm.generate`` and ``chat {model}`` open until :meth:`end`.

    Unlike the other scopes it is not a context manager: a stream outlives the call that opened
    it, and its steps run whenever the caller asks for the next chunk. Each step of the pipeline
    runs inside :meth:`activate`, which makes the innermost span started so far current for that
    step only, never while the caller's own code runs between chunks. :meth:`start_chat` opens
    the chat span (after encoding). :meth:`end` is idempotent and thread-safe: the first call
    ends both spans, later ones do nothing, so every path that may end a stream (exhaustion,
    close, cancellation, a finalizer on another thread, interpreter exit) can call it.
    """

    @property
    def trace_id(self) -> str | None: ...

    def activate(self) -> AbstractContextManager[object]: ...

    def start_chat(self, request: ChatRequestInfo) -> None: ...

    def first_chunk(self) -> None:
        """The first content chunk arrived (time to first chunk)."""

    def chunk(self) -> None:
        """A later content chunk arrived (time per output chunk)."""

    def response(self, info: ChatResponseInfo) -> None: ...

    def end(
        self,
        *,
        how: str,  # one of STREAM_ENDS
        outcome: str,  # "success" | "fallback" | "error"
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,
    ) -> None: ...


class PipelineObserver(Protocol):
    """Receives the pipeline's scopes. Implementations must never raise into the pipeline."""

    def generate(
        self, *, model: str, batch_size: int, provider: str
    ) -> AbstractContextManager[GenerateScope]: ...

    def generate_batch(
        self, *, model: str, batch_size: int, provider: str
    ) -> AbstractContextManager[GenerateScope]: ...

    def encode(
        self, *, encoder_type: str, device: str, batch_size: int
    ) -> AbstractContextManager[EncodeScope]: ...

    def chat(self, request: ChatRequestInfo) -> AbstractContextManager[ChatScope]: ...

    def stream(self, *, model: str, batch_size: int, provider: str) -> StreamScope: ...


class HttpScope(Protocol):
    """One HTTP attempt the client is making (request sent; response or failure to come)."""

    def response(self, status: int) -> None:
        """The response headers arrived with ``status``: the attempt is over."""

    def fail(self, error: BaseException) -> None:
        """The attempt failed without a response."""


class HttpObserver(Protocol):
    """Told by the LLM client about each HTTP attempt; must never raise into the client."""

    def http_request(
        self, method: str, url: object, headers: MutableMapping[str, str]
    ) -> HttpScope | None:
        """An attempt starts: may add propagation ``headers``; ``None``: nothing to report."""


class _NoopScope:
    __slots__ = ()

    @property
    def trace_id(self) -> str | None:
        return None

    def finish(
        self,
        *,
        outcome: str,
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        return None

    def fail(self, error: BaseException) -> None:
        return None

    def response(self, info: ChatResponseInfo) -> None:
        return None

    def attempts(self, count: int) -> None:
        return None

    def activate(self) -> _NoopContext:
        return _NOOP_CONTEXT

    def start_chat(self, request: ChatRequestInfo) -> None:
        return None

    def first_chunk(self) -> None:
        return None

    def chunk(self) -> None:
        return None

    def end(
        self,
        *,
        how: str,
        outcome: str,
        attempts: int,
        fallback_strategy: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        return None


_NOOP_SCOPE = _NoopScope()


class _NoopContext:
    """A reusable, stateless context manager yielding the shared no-op scope."""

    __slots__ = ()

    def __enter__(self) -> _NoopScope:
        return _NOOP_SCOPE

    def __exit__(self, *exc_info: object) -> None:
        return None


_NOOP_CONTEXT = _NoopContext()


class NoopObserver:
    """The default observer: records nothing."""

    def generate(self, *, model: str, batch_size: int, provider: str) -> _NoopContext:
        return _NOOP_CONTEXT

    def generate_batch(self, *, model: str, batch_size: int, provider: str) -> _NoopContext:
        return _NOOP_CONTEXT

    def encode(self, *, encoder_type: str, device: str, batch_size: int) -> _NoopContext:
        return _NOOP_CONTEXT

    def chat(self, request: ChatRequestInfo) -> _NoopContext:
        return _NOOP_CONTEXT

    def stream(self, *, model: str, batch_size: int, provider: str) -> _NoopScope:
        return _NOOP_SCOPE


NOOP_OBSERVER: PipelineObserver = NoopObserver()

_lock = threading.Lock()
_observer: PipelineObserver = NOOP_OBSERVER


_http_observer: HttpObserver | None = None


def get_http_observer() -> HttpObserver | None:
    """The HTTP attempt observer (``None`` unless instrumentation installed one)."""
    return _http_observer


def set_http_observer(observer: HttpObserver | None) -> HttpObserver | None:
    """Install the HTTP attempt observer (``None`` removes it); returns the previous one."""
    global _http_observer
    with _lock:
        previous = _http_observer
        _http_observer = observer
    return previous


def get_observer() -> PipelineObserver:
    """The observer in use (the no-op one unless instrumentation installed another)."""
    return _observer


def set_observer(observer: PipelineObserver | None) -> PipelineObserver:
    """Install ``observer`` (``None`` restores the no-op one); returns the previous observer."""
    global _observer
    with _lock:
        previous = _observer
        _observer = observer if observer is not None else NOOP_OBSERVER
    return previous


@contextmanager
def observing(observer: PipelineObserver) -> Iterator[PipelineObserver]:
    """Install ``observer`` for the duration of a ``with`` block (tests)."""
    previous = set_observer(observer)
    try:
        yield observer
    finally:
        set_observer(previous)
