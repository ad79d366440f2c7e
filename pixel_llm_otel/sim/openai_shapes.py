"""OpenAI-compatible bodies: request validation, completions, stream chunks and error bodies.

The reply is deterministic and derived from the request, so tests can assert it:
:func:`reply_text` names the model and the first 8 hex digits of the SHA-256 of the last user
message's text. Token counts are whitespace-separated words.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SYSTEM_FINGERPRINT",
    "ChatRequest",
    "RequestInvalid",
    "answer",
    "chunk",
    "completion",
    "error_body",
    "models_list",
    "parse_chat_request",
    "reply_text",
    "sse",
    "stream_chunks",
    "usage",
]

SYSTEM_FINGERPRINT = "fp_pixelsim"
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_ids = itertools.count(1)


class RequestInvalid(Exception):
    """A request the API answers with 400 (message, param and code as OpenAI reports them)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat-completions request the simulator uses."""

    model: str
    messages: tuple[Mapping[str, Any], ...]
    max_tokens: int | None
    stream: bool
    include_usage: bool
    n: int


def error_body(
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _type_name(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _invalid_type(param: str, expected: str, value: object) -> RequestInvalid:
    return RequestInvalid(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_chat_request(body: object) -> ChatRequest:
    """Validate a decoded body as the OpenAI API does; raise :class:`RequestInvalid` if bad."""
    if not isinstance(body, dict):
        raise RequestInvalid("The request body must be a JSON object.")
    for param in ("model", "messages"):
        if param not in body:
            raise RequestInvalid(
                f"Missing required parameter: '{param}'.",
                param=param,
                code="missing_required_parameter",
            )
    model = body["model"]
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    if not model:
        raise RequestInvalid("Invalid 'model': empty string.", param="model", code="invalid_value")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise RequestInvalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(param, "an object", message)
        role = message.get("role")
        if role not in _ROLES:
            raise RequestInvalid(
                f"Invalid value for '{param}.role': expected one of {sorted(_ROLES)}.",
                param=f"{param}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _invalid_type(f"{param}.content", "a string or an array", content)
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _invalid_type("max_tokens", "an integer", max_tokens)
        if max_tokens < 0:
            raise RequestInvalid(
                f"Invalid 'max_tokens': integer below minimum value. Expected a value >= 0, "
                f"but got {max_tokens} instead.",
                param="max_tokens",
                code="integer_below_min_value",
            )
    _check_range(body, "temperature", 0.0, 2.0)
    _check_range(body, "top_p", 0.0, 1.0)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid_type("stream_options", "an object", options)
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise _invalid_type("stream_options.include_usage", "a boolean", include_usage)
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool):
        raise _invalid_type("n", "an integer", n)
    if not 1 <= n <= 128:
        raise RequestInvalid(
            f"Invalid 'n': expected a value between 1 and 128, but got {n} instead.",
            param="n",
            code="invalid_value",
        )
    return ChatRequest(model, tuple(messages), max_tokens, stream, include_usage, n)


def _check_range(body: Mapping[str, Any], param: str, low: float, high: float) -> None:
    value = body.get(param)
    if value is None:
        return
    if not _is_number(value):
        raise _invalid_type(param, "a decimal", value)
    if value < low:
        raise RequestInvalid(
            f"Invalid '{param}': decimal below minimum value. Expected a value >= {low:g}, "
            f"but got {value} instead.",
            param=param,
            code="decimal_below_min_value",
        )
    if value > high:
        raise RequestInvalid(
            f"Invalid '{param}': decimal above maximum value. Expected a value <= {high:g}, "
            f"but got {value} instead.",
            param=param,
            code="decimal_above_max_value",
        )


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        ]
        return "\n".join(str(p) for p in parts)
    return ""


def reply_text(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The full (untruncated) deterministic reply to ``messages``."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    text = _text_of(last_user.get("content")) if last_user is not None else ""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"Simulated caption from {model} for prompt {digest}: a calm scene, rendered in pixels."


def _words(text: str) -> list[str]:
    return text.split()


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(len(_words(_text_of(m.get("content")))) for m in messages)


def answer(request: ChatRequest) -> tuple[str, str]:
    """(content, finish_reason) after applying ``max_tokens`` (one token per word)."""
    words = _words(reply_text(request.model, request.messages))
    if request.max_tokens is not None and request.max_tokens < len(words):
        return " ".join(words[: request.max_tokens]), "length"
    return " ".join(words), "stop"


#: Tokens an image costs, as OpenAI bills a low-detail image.
IMAGE_TOKENS = 85


def _images(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    )


def usage(request: ChatRequest, content: str) -> dict[str, Any]:
    """Token usage; with images, also the details OpenAI reports (image, cached, reasoning)."""
    prompt = prompt_tokens(request.messages)
    completion_tokens = len(_words(content)) * request.n
    images = _images(request.messages)
    if images:
        prompt += IMAGE_TOKENS * images
    value: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if images:
        value["prompt_tokens_details"] = {"cached_tokens": 0, "image_tokens": IMAGE_TOKENS * images}
        value["completion_tokens_details"] = {"reasoning_tokens": 0}
    return value


def new_id() -> str:
    return f"chatcmpl-sim{next(_ids):012d}"


def completion(request: ChatRequest, *, empty_choices: bool = False) -> dict[str, Any]:
    """A ``chat.completion`` object answering ``request``."""
    content, finish_reason = answer(request)
    choices = (
        []
        if empty_choices
        else [
            {
                "index": i,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            for i in range(request.n)
        ]
    )
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": choices,
        "usage": usage(request, content),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chunk(
    completion_id: str,
    request: ChatRequest,
    choices: list[dict[str, Any]],
    *,
    usage_value: dict[str, Any] | None = None,
    created: int,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": request.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if request.include_usage:
        body["usage"] = usage_value
    return body


def stream_chunks(request: ChatRequest, *, empty_choices: bool = False) -> list[dict[str, Any]]:
    """Every chunk of a streamed answer, in order (role, one per word, finish, usage)."""
    content, finish_reason = answer(request)
    cid, created = new_id(), int(time.time())

    def delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        if empty_choices:
            return []
        return [
            {"index": i, "delta": d, "logprobs": None, "finish_reason": finish}
            for i in range(request.n)
        ]

    words = _words(content)
    chunks = [chunk(cid, request, delta({"role": "assistant", "content": ""}), created=created)]
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        chunks.append(chunk(cid, request, delta({"content": piece}), created=created))
    chunks.append(chunk(cid, request, delta({}, finish_reason), created=created))
    if request.include_usage:
        chunks.append(chunk(cid, request, [], usage_value=usage(request, content), created=created))
    return chunks


def sse(data: Mapping[str, Any] | str) -> bytes:
    """One server-sent event line: ``data: <json>\\n\\n`` (or a raw string such as ``[DONE]``)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def models_list(models: Sequence[str], *, created: int = 1_700_000_000) -> dict[str, Any]:
    """The ``GET /v1/models`` list object."""
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "pixel-llm-otel-sim"}
            for m in models
        ],
    }
