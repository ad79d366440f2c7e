"""``StructuredLogger``: JSON lines through the stdlib logging machinery, never blocking the caller.

The caller's thread only builds the record (trace ids, classification, redaction, traceback
text) and puts it on a bounded queue; a :class:`logging.handlers.QueueListener` thread does the
formatting and the I/O. When the queue is full the record is dropped and counted
(:attr:`StructuredLogger.dropped`): logging never slows a request down.

    log = StructuredLogger("pixel_llm", extra_context={"service": "captioner"})
    log.warning("retrying", error_code="ERR_TIMEOUT_READ", context={"attempt": 2})
    try: ...
    except Exception: log.exception("caption failed")   # error_code classified, stack_trace
    log.close()                                          # flushes; also done at interpreter exit

Each instance owns a private :class:`logging.Logger` (not registered in the logging manager, so
two instances never share handlers). The record layout is described in
:mod:`pixel_llm_otel.monitoring._json`; :class:`JsonFormatter` gives the same lines on any stdlib
handler.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import logging.handlers
import queue
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import IO, Any

from ..errors import ErrorCode, ValidationError
from . import _capture
from ._forward import FORWARDER
from ._json import JsonFormatter, TraceContextFilter, prepare_record

__all__ = ["JsonFormatter", "StructuredLogger", "TraceContextFilter"]

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
_ExcInfo = bool | BaseException | None


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Puts prepared records on a bounded queue without blocking; counts what did not fit."""

    def __init__(self, q: queue.Queue[Any]) -> None:
        super().__init__(q)
        self.dropped = 0
        self.closed = False
        self._count_lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        prepare_record(record)  # on the caller's thread: trace ids, error code, redaction
        message = record.getMessage()
        prepared = copy.copy(record)
        prepared.message = message
        prepared.msg = message
        prepared.args = None
        prepared.exc_info = None  # the traceback is already text in exc_text
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        if self.closed:
            self._count_drop()
            return
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self._count_drop()

    def _count_drop(self) -> None:
        with self._count_lock:
            self.dropped += 1


class _Listener(logging.handlers.QueueListener):
    def __init__(self, q: queue.Queue[Any], handler: logging.Handler) -> None:
        super().__init__(q, handler, respect_handler_level=True)
        self._bounded = q

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after writing what is queued; never waits more than ~``timeout`` seconds, even
        when the target handler is stuck or the queue is full."""
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # None is QueueListener's stop sentinel
            self._bounded.put(None, timeout=timeout)
        thread.join(timeout)
        self._thread = None


class _Core:
    """The shared plumbing of a logger and the views :meth:`StructuredLogger.bind` makes."""

    def __init__(self, name: str, level: int, target: logging.Handler, queue_size: int) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.handler = _DroppingQueueHandler(self.queue)
        self.target = target
        self.logger = logging.Logger(name, level)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        self.logger.addHandler(FORWARDER)  # extra sinks (OTLP), on the caller's thread
        self.listener = _Listener(self.queue, target)
        self.listener.start()
        self._close_lock = threading.Lock()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.queue.all_tasks_done:
            while self.queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.queue.all_tasks_done.wait(left)
        self.target.flush()
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._close_lock:
            if self.handler.closed:
                return
            self.handler.closed = True
        self.listener.stop(timeout)
        if not self.listener_stuck():
            self.target.flush()

    def listener_stuck(self) -> bool:
        return self.queue.unfinished_tasks > 0


class StructuredLogger:
    """A JSON-lines logger: ``debug``/``info``/``warning``/``error``/``critical``/``exception``.

    Args:
        name: the ``logger`` field of every line.
        level: ``"DEBUG"``..``"CRITICAL"`` or a logging level number.
        stream: a text stream (default ``sys.stderr``) or a :class:`logging.Handler` to write to
            (it is given a :class:`JsonFormatter` if it has no formatter).
        extra_context: merged into every record's ``context`` (per-call values win).
        queue_size: records buffered before new ones are dropped.
    """

    def __init__(
        self,
        name: str,
        *,
        level: int | str = "INFO",
        stream: IO[str] | logging.Handler | None = None,
        extra_context: Mapping[str, Any] | None = None,
        queue_size: int = 10_000,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError(field="name", value=name, expected="a non-empty str")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValidationError(field="queue_size", value=queue_size, expected="an int >= 1")
        if extra_context is not None and not isinstance(extra_context, Mapping):
            raise ValidationError(field="extra_context", value=extra_context, expected="a mapping")
        target = _target_handler(stream)
        self._core = _Core(name, _level_number(level), target, queue_size)
        self._extra: dict[str, Any] = dict(extra_context or {})
        self._finalizer = weakref.finalize(self, self._core.close)

    # --- views -----------------------------------------------------------------------------
    def bind(self, **context: Any) -> StructuredLogger:
        """A logger sharing this one's queue and output, with ``context`` added to every record."""
        view = object.__new__(StructuredLogger)
        view._core = self._core
        view._extra = {**self._extra, **context}
        view._finalizer = self._finalizer
        return view

    @property
    def name(self) -> str:
        return self._core.logger.name

    @property
    def level(self) -> int:
        return self._core.logger.level

    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full (or the logger closed)."""
        return self._core.handler.dropped

    def is_enabled_for(self, level: int | str) -> bool:
        return self._core.logger.isEnabledFor(_level_number(level))

    # --- logging ---------------------------------------------------------------------------
    def debug(self, msg: str, *args: object, **kw: Any) -> None:
        self._log(logging.DEBUG, msg, args, **kw)

    def info(self, msg: str, *args: object, **kw: Any) -> None:
        self._log(logging.INFO, msg, args, **kw)

    def warning(self, msg: str, *args: object, **kw: Any) -> None:
        self._log(logging.WARNING, msg, args, **kw)

    def error(self, msg: str, *args: object, **kw: Any) -> None:
        self._log(logging.ERROR, msg, args, **kw)

    def critical(self, msg: str, *args: object, **kw: Any) -> None:
        self._log(logging.CRITICAL, msg, args, **kw)

    def exception(self, msg: str, *args: object, exc_info: _ExcInfo = True, **kw: Any) -> None:
        """Log at ERROR with the exception being handled (its code, type and stack trace)."""
        self._log(logging.ERROR, msg, args, exc_info=exc_info, **kw)

    def log(self, level: int | str, msg: str, *args: object, **kw: Any) -> None:
        self._log(_level_number(level), msg, args, **kw)

    def _log(
        self,
        level: int,
        msg: str,
        args: tuple[object, ...],
        *,
        error_code: ErrorCode | str | None = None,
        context: Mapping[str, Any] | None = None,
        exc_info: _ExcInfo = None,
        stack_info: bool = False,
    ) -> None:
        logger = self._core.logger
        if not logger.isEnabledFor(level):
            return
        merged = {**self._extra, **context} if context else dict(self._extra)
        extra = {"error_code": None if error_code is None else str(error_code), "context": merged}
        sinks = _capture.active_sinks()
        if sinks:  # capture_logs(): render synchronously into the capture lists instead
            record = logger.makeRecord(
                logger.name,
                level,
                "(unknown file)",
                0,
                msg,
                args,
                _exc_tuple(exc_info),
                extra=extra,
                sinfo=None,
            )
            _capture.deliver(JsonFormatter().to_dict(record), sinks)
            return
        logger.log(
            level, msg, *args, exc_info=exc_info, extra=extra, stack_info=stack_info, stacklevel=3
        )

    # --- lifecycle -------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is written (at most ``timeout`` s); True if so."""
        return self._core.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the writer thread, waiting at most about ``timeout``
        seconds (a stuck handler is abandoned). Later records are dropped and counted."""
        if self._finalizer.detach() is not None:
            self._core.close(timeout)

    def __enter__(self) -> StructuredLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StructuredLogger({self.name!r}, level={logging.getLevelName(self.level)!r})"


def _exc_tuple(exc_info: _ExcInfo) -> Any:
    if isinstance(exc_info, BaseException):
        return (type(exc_info), exc_info, exc_info.__traceback__)
    if exc_info:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


def _level_number(level: object) -> int:
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    if isinstance(level, str) and level.upper() in _LEVELS:
        return _LEVELS[level.upper()]
    raise ValidationError(
        field="level", value=level, expected="DEBUG, INFO, WARNING, ERROR, CRITICAL or an int >= 0"
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is written, not when it was built
    (test runners, notebooks and daemonisers replace it; a captured stream may be closed)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return None


def _target_handler(stream: object) -> logging.Handler:
    if isinstance(stream, logging.Handler):
        if stream.formatter is None:
            stream.setFormatter(JsonFormatter())
        return stream
    if stream is None:
        handler: logging.Handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        return handler
    if callable(getattr(stream, "write", None)):
        handler = logging.StreamHandler(stream)  # type: ignore[call-overload]
        handler.setFormatter(JsonFormatter())
        return handler
    raise ValidationError(
        field="stream", value=stream, expected="a text stream, a logging.Handler or None"
    )
