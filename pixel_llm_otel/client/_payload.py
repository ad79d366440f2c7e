"""Building and encoding ``POST /chat/completions`` request bodies, with argument checks."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ErrorCode, ValidationError

__all__ = ["RESERVED_KEYS", "build_chat_payload", "encode_json"]

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
    if not isinstance(model, str) or not model.strip():
        raise ValidationError(
            field="model", value=model, expected="a non-empty str", code=ErrorCode.VALIDATION_CONFIG
        )
    payload: dict[str, Any] = {"model": model, "messages": _messages(messages)}
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise ValidationError(
                field="max_tokens",
                value=max_tokens,
                expected="an int >= 0 or None",
                code=ErrorCode.VALIDATION_RANGE,
            )
        payload["max_tokens"] = max_tokens
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or not 0.0 <= temperature <= 2.0
        ):
            raise ValidationError(
                field="temperature",
                value=temperature,
                expected="a float in [0, 2] or None",
                code=ErrorCode.VALIDATION_RANGE,
            )
        payload["temperature"] = float(temperature)
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
