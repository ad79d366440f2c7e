"""Chat messages in the GenAI conventions' message schema, as bounded, secret-free JSON.

OpenAI-style request messages become ``{"role", "parts": [...]}`` with parts of ``type`` ``text``
(``content``), ``blob`` (``modality``, ``mime_type``, ``content`` base64) or ``uri`` (``modality``,
``uri``); ``system`` messages become ``gen_ai.system_instructions`` (a list of parts); the answer is
one output message with its ``finish_reason``. Runs only when content capture is on.

Images (``data:`` URLs) are never copied by default: their part carries ``mime_type``, ``size``
(bytes) and ``sha256``; the base64 ``content`` is inlined only when the image is within
``image_max_bytes``. A ``uri`` keeps no query string, fragment or user info. Every text goes
through the log redactor (Bearer/Basic credentials, ``sk-`` keys, URL passwords), and text parts
are cut so that each JSON value stays within ``max_chars`` of text and remains valid JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..monitoring import redact
from ._content import ContentPolicy

__all__ = ["Content", "build_content", "dumps"]

Part = dict[str, Any]
Message = dict[str, Any]


def dumps(value: object) -> str:
    """Compact JSON, non-ASCII kept (the conventions' attributes are JSON strings)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Content:
    """One chat's content in the schema: input messages, system instructions, output messages.

    ``full_*`` are the same with image bytes always inlined and nothing cut: what a completion
    hook uploads (``None`` when no hook asked for them).
    """

    input_messages: list[Message]
    system_instructions: list[Part]
    output_messages: list[Message]
    full: tuple[list[Message], list[Part], list[Message]] | None = None

    def json(self) -> dict[str, str]:
        """Attribute name -> JSON string, for the values that are not empty."""
        values: dict[str, str] = {}
        if self.input_messages:
            values["gen_ai.input.messages"] = dumps(self.input_messages)
        if self.system_instructions:
            values["gen_ai.system_instructions"] = dumps(self.system_instructions)
        if self.output_messages:
            values["gen_ai.output.messages"] = dumps(self.output_messages)
        return values


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"...[truncated {len(text) - limit} chars]"
    return text[: max(0, limit - len(marker))] + marker


def _clean_uri(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return ""


def _image_part(url: str, cap: int | None, inline_all: bool) -> Part:
    if not url.startswith("data:"):
        return {"type": "uri", "modality": "image", "mime_type": None, "uri": _clean_uri(url)}
    header, _, payload = url[5:].partition(",")
    mime = header.split(";", 1)[0] or None
    try:
        raw = base64.b64decode(payload, validate=True) if ";base64" in header else payload.encode()
    except (binascii.Error, ValueError):
        return {"type": "blob", "modality": "image", "mime_type": mime, "size": None}
    part: Part = {
        "type": "blob",
        "modality": "image",
        "mime_type": mime,
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    if inline_all or (cap is not None and len(raw) <= cap):
        part["content"] = base64.b64encode(raw).decode("ascii")
    return part


def _parts(content: Any, cap: int | None, inline_all: bool) -> list[Part]:
    if isinstance(content, str):
        return [{"type": "text", "content": redact(content)}]
    parts: list[Part] = []
    if isinstance(content, Sequence):
        for item in content:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type")
            if kind == "text":
                parts.append({"type": "text", "content": redact(str(item.get("text", "")))})
            elif kind == "image_url":
                image = item.get("image_url")
                url = image.get("url") if isinstance(image, Mapping) else image
                parts.append(_image_part(str(url or ""), cap, inline_all))
            else:  # an unknown part: its type, never its data
                parts.append({"type": str(kind or "unknown")})
    return parts


def _split(
    messages: Sequence[Mapping[str, Any]], cap: int | None, inline_all: bool
) -> tuple[list[Message], list[Part]]:
    inputs: list[Message] = []
    system: list[Part] = []
    for message in messages:
        role = str(message.get("role", "user"))
        parts = _parts(message.get("content"), cap, inline_all)
        if role in ("system", "developer"):
            system.extend(parts)
        else:
            inputs.append({"role": role, "parts": parts})
    return inputs, system


def _output(text: str | None, finish_reasons: Sequence[str]) -> list[Message]:
    if text is None:
        return []
    reason = finish_reasons[0] if finish_reasons else "stop"
    return [{"role": "assistant", "parts": [{"type": "text", "content": redact(text)}],
             "finish_reason": reason}]  # fmt: skip


def _text_parts(value: list[Any]) -> list[Part]:
    found: list[Part] = []
    for item in value:
        if item.get("type") == "text":
            found.append(item)
        elif "parts" in item:
            found.extend(p for p in item["parts"] if p.get("type") == "text")
    return found


def _bound(value: list[Any], max_chars: int) -> None:
    """Cut the text parts of ``value`` in place so their text totals at most ``max_chars``."""
    texts = _text_parts(value)
    total = sum(len(p["content"]) for p in texts)
    if total <= max_chars or not texts:
        return
    spare = max_chars
    ordered = sorted(texts, key=lambda p: len(p["content"]))  # short ones first, kept whole
    for index, part in enumerate(ordered):
        limit = max(64, spare // (len(ordered) - index))
        part["content"] = _cut(part["content"], limit)
        spare = max(0, spare - len(part["content"]))


def build_content(
    policy: ContentPolicy,
    messages: Sequence[Mapping[str, Any]],
    output_text: str | None,
    finish_reasons: Sequence[str],
    *,
    full: bool = False,
) -> Content:
    """The chat's content under ``policy``; ``full``: also the uncut version for a hook."""
    inputs, system = _split(messages, policy.image_max_bytes, False)
    outputs = _output(output_text, finish_reasons)
    for value in (inputs, system, outputs):
        _bound(value, policy.max_chars)
    complete = None
    if full:
        full_inputs, full_system = _split(messages, None, True)
        complete = (full_inputs, full_system, _output(output_text, finish_reasons))
    return Content(inputs, system, outputs, complete)
