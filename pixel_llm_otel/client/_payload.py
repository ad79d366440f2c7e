"""Building and encoding ``POST /chat/completions`` request bodies, with argument checks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._checks import check_max_tokens, check_temperature, check_text
from ..errors import ErrorCode, ValidationError

__all__ = ["RESERVED_KEYS", "build_chat_payload", "chat_request_body", "encode_json"]

#: Body keys the client owns; ``extra`` may not set them.
RESERVED_KEYS = frozenset({"model", "messages", "stream", "stream_options"})


# One encoder for every body: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def build_chat_payload(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    stream: bool,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON body of a chat request. ``max_tokens=0`` and ``temperature=0.0`` are kept:
    only ``None`` means "let the server decide"."""
    check_text("model", model, what="a model name")
    payload: dict[str, Any] = {"model": model, "messages": _messages(messages)}
    if max_tokens is not None:
        payload["max_tokens"] = check_max_tokens(
            "max_tokens", max_tokens, code=ErrorCode.VALIDATION_RANGE
        )
    if temperature is not None:
        payload["temperature"] = check_temperature(
            "temperature", temperature, code=ErrorCode.VALIDATION_RANGE
        )
    if extra:
        if not isinstance(extra, Mapping):
            raise ValidationError(
                field="extra",
                value=extra,
                expected="a mapping of extra body fields",
                code=ErrorCode.VALIDATION_TYPE,
            )
        clash = sorted(k for k in extra if k in RESERVED_KEYS or k in payload)
        if clash:
            raise ValidationError(
                field="extra",
                value=clash,
                expected=f"no keys the client sets itself ({', '.join(clash)} given twice "
                "or reserved)",
                code=ErrorCode.VALIDATION_CONFIG,
            )
        payload.update(extra)
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


def chat_request_body(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
) -> bytes:
    """The encoded body of a non-streaming chat request whose values were checked already
    (``check_max_tokens`` / ``check_temperature`` / a non-empty model, well-formed messages):
    the same bytes as ``encode_json(build_chat_payload(..., stream=False, extra=None))``
    without checking them again. The pipeline builds each caption's request this way, once."""
    payload: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    if temperature is not None:
        payload["temperature"] = temperature
    return encode_json(payload)


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; values that JSON cannot hold raise :class:`ValidationError`."""
    try:
        text = _ENCODER.encode(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"request body is not JSON-serialisable: {exc}",
            field="extra",
            code=ErrorCode.VALIDATION_TYPE,
            cause=exc,
        ) from exc
    return text.encode("utf-8")


def _messages(messages: object) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValidationError(
            field="messages",
            value=messages,
            expected='a non-empty sequence of {"role": ..., "content": ...} mappings',
            code=ErrorCode.VALIDATION_TYPE,
        )
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValidationError(
                field=f"messages[{i}]",
                value=type(message).__name__,
                expected='a mapping with a str "role"',
                code=ErrorCode.VALIDATION_TYPE,
            )
        out.append(dict(message))
    return out
