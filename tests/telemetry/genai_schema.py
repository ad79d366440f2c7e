"""Checks of the GenAI message schema, written from the conventions' text.

``gen_ai.input.messages``: an array of messages ``{"role", "parts", "name"?}``; ``role`` one of
system, user, assistant, tool (or another string); ``parts`` an array of parts, each an object with
a string ``type``: ``text`` (``content`` string), ``blob`` (``modality`` string, ``mime_type``
string or null, ``content`` base64), ``uri`` (``modality``, ``mime_type``, ``uri``), or any other
type (generic part). ``gen_ai.output.messages``: the same, each with a ``finish_reason`` string
(stop, length, content_filter, tool_call, error, or another). ``gen_ai.system_instructions``: an
array of parts.

One documented deviation (docs/telemetry-contract.md): a ``blob`` part whose bytes are not captured
omits ``content`` and carries ``size`` (bytes) and ``sha256`` (64 hex chars) instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
ROLES = {"system", "user", "assistant", "tool"}


class SchemaError(AssertionError):
    pass


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise SchemaError(f"{where}: {problem}")


def check_part(part: Any, where: str) -> None:
    _require(isinstance(part, dict), where, "a part is an object")
    kind = part.get("type")
    _require(isinstance(kind, str) and kind != "", where, "type is a non-empty string")
    if kind == "text":
        _require(isinstance(part.get("content"), str), where, "text part: content string")
    elif kind in ("blob", "uri"):
        _require(isinstance(part.get("modality"), str), where, f"{kind} part: modality string")
        mime = part.get("mime_type")
        _require(mime is None or isinstance(mime, str), where, "mime_type string or null")
        if kind == "uri":
            _require(isinstance(part.get("uri"), str), where, "uri part: uri string")
        elif "content" in part:
            try:
                base64.b64decode(part["content"], validate=True)
            except (binascii.Error, TypeError, ValueError) as exc:
                raise SchemaError(f"{where}: blob content is not base64") from exc
        else:
            _require(
                isinstance(part.get("sha256"), str) and bool(_SHA256.match(part["sha256"])),
                where,
                "a blob without content carries sha256",
            )
            _require(isinstance(part.get("size"), int), where, "... and size")


def check_messages(text: str, *, output: bool = False) -> list[dict[str, Any]]:
    """Parse and check an input (or output) messages value; returns it."""
    value = json.loads(text)
    _require(isinstance(value, list), "$", "an array of messages")
    for i, message in enumerate(value):
        where = f"$[{i}]"
        _require(isinstance(message, dict), where, "a message is an object")
        _require(isinstance(message.get("role"), str), where, "role string")
        parts = message.get("parts")
        _require(isinstance(parts, list), where, "parts array")
        for j, part in enumerate(parts):
            check_part(part, f"{where}.parts[{j}]")
        if output:
            _require(isinstance(message.get("finish_reason"), str), where, "finish_reason string")
    return value


def check_system_instructions(text: str) -> list[dict[str, Any]]:
    value = json.loads(text)
    _require(isinstance(value, list), "$", "an array of parts")
    for j, part in enumerate(value):
        check_part(part, f"$[{j}]")
    return value
