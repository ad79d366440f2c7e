"""Prompt text: :func:`sanitize_input`, re-exported by :mod:`pixel_llm_otel.validation`."""

from __future__ import annotations

import re
import unicodedata

from .errors import ErrorCode, ValidationError
from .errors.exceptions import _short_repr

__all__ = ["sanitize_input"]

_NORMAL_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
#: C0/C1 control characters and DEL, removed from prompts (``\n`` and ``\t`` are kept).
_CONTROL_CHARS = {
    point: None for point in (*range(0x20), *range(0x7F, 0xA0)) if chr(point) not in "\n\t"
}
#: An unpaired surrogate (a str never holds a valid pair: those are decoded to one code point).
_SURROGATE = re.compile("[\ud800-\udfff]")


def sanitize_input(
    text: object,
    *,
    name: str = "prompt",
    max_chars: int | None = 8000,
    normalize: str | None = "NFC",
) -> str:
    """Return a cleaned copy of a prompt.

    NUL characters and unpaired surrogates are rejected; ``\\r\\n`` and lone ``\\r`` become ``\\n``;
    other C0/C1 control characters and DEL are removed (``\\n`` and ``\\t`` are kept); the text is
    normalised to ``normalize`` (``"NFC"``, ``"NFKC"``, ``"NFD"``, ``"NFKD"`` or ``None``); then
    it must be at most ``max_chars`` characters (``None``: no limit). Failures raise
    :class:`ValidationError` with code ``ERR_VALIDATION_PROMPT``.
    """
    code = ErrorCode.VALIDATION_PROMPT
    if normalize is not None and normalize not in _NORMAL_FORMS:
        raise ValidationError(
            field="normalize", value=normalize, expected=f"one of {_NORMAL_FORMS} or None"
        )
    if max_chars is not None and (
        not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1
    ):
        raise ValidationError(field="max_chars", value=max_chars, expected="an int >= 1 or None")
    if not isinstance(text, str):
        raise ValidationError(field=name, value=text, expected="a str", code=code)
    text = str.__str__(text)  # a plain str: a subclass's overridden methods never run here
    if "\x00" in text:
        raise ValidationError(
            f"{name}: contains a NUL character at index {text.index(chr(0))}; expected text "
            "without NUL",
            field=name,
            value=_short_repr(text),
            expected="text without NUL characters",
            code=code,
        )
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL_CHARS)
    surrogate = _SURROGATE.search(cleaned)
    if surrogate is not None:
        raise ValidationError(
            f"{name}: contains an unpaired surrogate at index {surrogate.start()}; expected "
            "valid Unicode",
            field=name,
            value=_short_repr(text),
            expected="valid Unicode text",
            code=code,
        )
    if normalize is not None:
        cleaned = unicodedata.normalize(normalize, cleaned)  # type: ignore[arg-type]
    if max_chars is not None and len(cleaned) > max_chars:
        raise ValidationError(
            f"{name}: {len(cleaned)} characters, expected at most {max_chars}",
            field=name,
            value=f"<{len(cleaned)} chars>",
            expected=f"at most {max_chars} characters",
            code=code,
        )
    return cleaned
