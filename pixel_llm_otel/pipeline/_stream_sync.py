"""``CaptionStream``: the blocking face of a streamed caption, and the interpreter-exit hook.

Each chunk of a :class:`CaptionStream` is read on the pipeline's private loop thread. Streams
that have not ended are tracked (weakly); at interpreter exit they are ended ``abandoned``, so
their spans are exported. The hook is registered at the first stream, after telemetry's own
exit hooks (``atexit`` runs last-in first-out), so the spans still reach the exporter.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._loop_thread import LoopThread
    from ._stream import AsyncCaptionStream
    from .result import StreamResult

__all__ = ["CaptionStream", "open_streams", "track", "untrack"]


class CaptionStream:
    """The blocking face of :class:`AsyncCaptionStream`: each chunk is read on the pipeline's
    private loop thread. ``with llm.stream(image) as stream: for chunk in stream: ...``."""

    def __init__(self, runner: LoopThread, stream: AsyncCaptionStream) -> None:
        self._runner = runner
        self._stream = stream

    @property
    def result(self) -> StreamResult | None:
        """The final result once the stream has ended, else ``None``."""
        return self._stream.result

    @property
    def text(self) -> str:
        """The text yielded so far."""
        return self._stream.text

    def __iter__(self) -> CaptionStream:
        return self

    def __next__(self) -> str:
        try:
            return self._runner.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Stop reading: the stream ends ``closed``. Idempotent."""
        if self._runner.is_running:
            self._runner.run(self._stream.aclose(), timeout=10.0)
        else:
            self._stream._end("closed")

    def __enter__(self) -> CaptionStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_OPEN_STREAMS: weakref.WeakSet[AsyncCaptionStream] = weakref.WeakSet()
_registered = False
_registry_lock = threading.Lock()


def track(stream: AsyncCaptionStream) -> None:
    global _registered
    with _registry_lock:
        _OPEN_STREAMS.add(stream)
        if not _registered:  # after telemetry's own exit hooks: atexit runs last-in first-out
            atexit.register(_abandon_open_streams)
            _registered = True


def untrack(stream: AsyncCaptionStream) -> None:
    with _registry_lock:
        _OPEN_STREAMS.discard(stream)


def _abandon_open_streams() -> None:
    """End every stream still open (``abandoned``) so its spans are exported before exit."""
    with _registry_lock:
        streams = list(_OPEN_STREAMS)
    for stream in streams:
        stream._end("abandoned")


def open_streams() -> int:
    """How many streams have not ended yet (tests)."""
    with _registry_lock:
        return len(_OPEN_STREAMS)
