"""The upload completion hook: full content to a directory or fsspec path, references on telemetry.

Enabled with ``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK=upload`` and
``OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH`` (a local directory or any ``fsspec`` URL, e.g.
``s3://bucket/prefix``), as the reference implementation names them, or with the
``content_upload_path=`` keyword. Each captured chat writes one JSON file per non-empty value
(input messages, output messages, system instructions: full, uncut, images inlined) named by trace
and span id, and the span and event get only ``gen_ai.input.messages_ref`` /
``gen_ai.output.messages_ref`` / ``gen_ai.system_instructions_ref`` (the file's URI).

Writes happen on one background thread with a bounded queue: the app never waits for storage; when
the queue is full the upload is dropped (and logged once) rather than slowing the call.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.trace import Span

from . import _names as n
from ._safety import report_failure

__all__ = ["UploadHook", "upload_hook_from_env"]

_log = logging.getLogger("pixel_llm_otel.telemetry")
_HOOK_NAME = "upload"
_REFS = (
    n.GEN_AI_INPUT_MESSAGES_REF,
    n.GEN_AI_SYSTEM_INSTRUCTIONS_REF,
    n.GEN_AI_OUTPUT_MESSAGES_REF,
)
_SUFFIXES = ("input", "system_instructions", "output")


def _opener(base: str) -> tuple[str, Callable[[str], Any]]:
    """``(normalised base, open-for-writing function)`` for a local path or an fsspec URL."""
    if "://" in base and not base.startswith("file://"):
        import fsspec  # type: ignore[import-untyped]  # optional: only for remote paths

        return base.rstrip("/"), lambda path: fsspec.open(path, "w", encoding="utf-8")
    local = os.path.abspath(base.removeprefix("file://"))
    os.makedirs(local, exist_ok=True)
    return local, lambda path: open(path, "w", encoding="utf-8")


class UploadHook:
    """Writes a chat's full content under ``base_path`` and returns the reference attributes."""

    def __init__(self, base_path: str, *, max_queue: int = 20) -> None:
        self._base, self._open = _opener(base_path)
        self._uri_base = self._base if "://" in self._base else "file://" + self._base
        self._slots = threading.BoundedSemaphore(max_queue)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixel-llm-upload")
        self.dropped = 0

    @property
    def base(self) -> str:
        return self._base

    def upload(self, span: Span, content: tuple[Any, Any, Any]) -> dict[str, str]:
        """Queue the writes of ``content``'s non-empty values; their references, by attribute."""
        ctx = span.get_span_context()
        stem = f"{ctx.trace_id:032x}_{ctx.span_id:016x}"
        refs: dict[str, str] = {}
        jobs: list[tuple[str, Any]] = []
        for attribute, suffix, value in zip(_REFS, _SUFFIXES, content, strict=True):
            if value:
                name = f"{stem}_{suffix}.json"
                jobs.append((f"{self._base}/{name}", value))
                refs[attribute] = f"{self._uri_base}/{name}"
        if not jobs:
            return refs
        if not self._slots.acquire(blocking=False):
            self.dropped += 1
            if self.dropped == 1:
                _log.warning("content upload queue full; dropping uploads (logged once)")
            return {}
        try:
            self._pool.submit(self._write, jobs)
        except RuntimeError:  # shut down
            self._slots.release()
            return {}
        return refs

    def _write(self, jobs: list[tuple[str, Any]]) -> None:
        try:
            for path, value in jobs:
                with self._open(path) as file:
                    json.dump(value, file, ensure_ascii=False, separators=(",", ":"))
        except Exception:
            report_failure("upload.write")
        finally:
            self._slots.release()

    def flush(self) -> None:
        """Wait for the queued writes (tests, shutdown)."""
        self._pool.submit(lambda: None).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def upload_hook_from_env(path: str | None = None) -> UploadHook | None:
    """The hook ``path`` or the environment asks for, or ``None``."""
    if path:
        return UploadHook(path)
    name = os.environ.get(n.ENV_COMPLETION_HOOK, "").strip().lower()
    if not name:
        return None
    base = os.environ.get(n.ENV_UPLOAD_BASE_PATH, "").strip()
    if name != _HOOK_NAME or not base:
        _log.warning(
            "%s=%r: only %r (with %s set) is supported here; no completion hook",
            n.ENV_COMPLETION_HOOK, name, _HOOK_NAME, n.ENV_UPLOAD_BASE_PATH,
        )  # fmt: skip
        return None
    return UploadHook(base)
