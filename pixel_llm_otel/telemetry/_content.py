"""Content capture settings: where chat content may go, and how much of it.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (or the ``capture_content=`` keyword of
``configure()`` / ``PixelLLMInstrumentor().instrument()``) takes the reference implementation's
values (opentelemetry-util-genai):

==================  =====================================================================
``no_content``      the default: no message content anywhere
``span_only``       ``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
                    ``gen_ai.system_instructions`` on the ``chat {model}`` span
``event_only``      the same, on a ``gen_ai.client.inference.operation.details`` log record
``span_and_event``  both
==================  =====================================================================

The legacy ``true`` / ``false`` of earlier releases still work (``true`` = ``span_only``) with a
one-time warning. Images are ``blob`` parts with their mime type, size and sha256; their bytes
only up to ``image_max_bytes`` (default: never). A completion hook (``OTEL_INSTRUMENTATION_GENAI_
COMPLETION_HOOK=upload``, :mod:`._upload`) writes the full content elsewhere and leaves only
references on the telemetry.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from . import _names as n

__all__ = [
    "DEFAULT_MAX_CHARS",
    "CaptureMode",
    "ContentPolicy",
    "capture_mode",
]

_log = logging.getLogger("pixel_llm_otel.telemetry")

DEFAULT_MAX_CHARS = 4096


class CaptureMode(enum.Enum):
    """Where message content is recorded."""

    NO_CONTENT = "no_content"  # nowhere (the default)
    SPAN_ONLY = "span_only"  # attributes of the chat span
    EVENT_ONLY = "event_only"  # the operation-details log record
    SPAN_AND_EVENT = "span_and_event"  # both

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)


_LEGACY = {"true": CaptureMode.SPAN_ONLY, "false": CaptureMode.NO_CONTENT}
_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    _log.warning(message, *args)


def capture_mode(value: object = None) -> CaptureMode:
    """The capture mode of a keyword value, or of the environment variable when ``None``.

    Accepts a :class:`CaptureMode`, its string value (any case), the legacy ``true``/``false``
    (strings or booleans; a one-time warning), and for the environment variable anything else
    (``no_content`` with a one-time warning, as the reference does). A bad keyword value raises
    ``ValidationError``.
    """
    from_env = value is None
    if from_env:
        value = os.environ.get(n.ENV_CAPTURE_CONTENT, "")
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value).strip().lower()
    if not text and from_env:
        return CaptureMode.NO_CONTENT
    try:
        return CaptureMode(text)
    except ValueError:
        pass
    legacy = _LEGACY.get(text)
    if legacy is not None:
        _warn_once(
            f"legacy:{text}",
            "%s=%s is the legacy form; use %s (one of no_content, span_only, event_only, "
            "span_and_event)",
            n.ENV_CAPTURE_CONTENT,
            text,
            legacy.value,
        )
        return legacy
    expected = "one of no_content, span_only, event_only, span_and_event (or legacy true/false)"
    if not from_env:
        raise ValidationError(field="capture_content", value=value, expected=expected)
    _warn_once(
        f"invalid:{text}", "%s=%r is not %s; capturing no content", n.ENV_CAPTURE_CONTENT,
        text, expected,
    )  # fmt: skip
    return CaptureMode.NO_CONTENT


def _image_cap_from_env() -> int | None:
    raw = os.environ.get(n.ENV_IMAGE_MAX_BYTES, "").strip()
    if not raw:
        return None
    try:
        cap = int(raw)
    except ValueError:
        cap = -1
    if cap < 0:
        _warn_once(f"cap:{raw}", "%s=%r is not a byte count; keeping no image bytes",
                   n.ENV_IMAGE_MAX_BYTES, raw)  # fmt: skip
        return None
    return cap


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPolicy:
    """What the observer records of a chat's content (built once, at instrumentation).

    ``mode``: where content goes. ``max_chars``: bound on the text of each content value (parts
    are cut with a marker so the JSON stays valid). ``image_max_bytes``: image bytes are inlined
    (base64) only up to this size; ``None`` (default) never. ``hook``: a completion hook that
    receives the full content (:class:`~._upload.UploadHook`) and stamps references.
    """

    mode: CaptureMode = CaptureMode.NO_CONTENT
    max_chars: int = DEFAULT_MAX_CHARS
    image_max_bytes: int | None = None
    hook: Any = None

    def __post_init__(self) -> None:
        if self.max_chars < 64:
            raise ValidationError(field="content_max_chars", value=self.max_chars, expected=">= 64")
        if self.image_max_bytes is not None and self.image_max_bytes < 0:
            raise ValidationError(
                field="content_image_max_bytes", value=self.image_max_bytes,
                expected="None or >= 0",
            )  # fmt: skip

    @property
    def enabled(self) -> bool:
        """Whether any content is built at all (a mode or a hook asks for it)."""
        return self.mode is not CaptureMode.NO_CONTENT or self.hook is not None

    @classmethod
    def create(
        cls,
        capture_content: object = None,
        *,
        max_chars: int | None = None,
        image_max_bytes: int | object | None = None,
        hook: Any = None,
    ) -> ContentPolicy:
        """The policy from instrument() keywords, the environment filling what is not given."""
        cap = _image_cap_from_env() if image_max_bytes is None else image_max_bytes
        return cls(
            mode=capture_mode(capture_content),
            max_chars=DEFAULT_MAX_CHARS if max_chars is None else int(max_chars),
            image_max_bytes=cap if isinstance(cap, int) else None,
            hook=hook,
        )
