"""Response types of the OpenAI chat API, parsed with strict shape checks.

Parsing never raises ``KeyError`` / ``TypeError``: a body of the wrong shape raises
:class:`ResponseShapeError` naming the JSON path, which the client turns into an
:class:`~pixel_llm_otel.errors.APIError` (``ERR_RESPONSE_INVALID``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..hooks import ChatResponseInfo
from ._json import loads

__all__ = [
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "ResponseShapeError",
    "StreamChoice",
    "StreamChunk",
    "Usage",
    "extract_error_message",
    "parse_chat_completion",
    "parse_model_list",
    "parse_stream_chunk",
]


class ResponseShapeError(ValueError):
    """A JSON response body does not have the expected shape. ``path`` names the place."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the server (any may be missing)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    # details, when reported (``prompt_tokens_details`` / ``completion_tokens_details``)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    image_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a completion (the text is kept out of ``repr``)."""

    role: str
    content: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Choice:
    index: int
    message: ChatMessage
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    """A parsed ``chat.completion`` (or a stream collected into one)."""

    id: str | None
    model: str | None
    created: int | None
    choices: tuple[Choice, ...]
    usage: Usage | None = None

    @property
    def text(self) -> str:
        """The first choice's content (``""`` when the model returned none)."""
        return self.choices[0].message.content or ""

    @property
    def finish_reasons(self) -> tuple[str, ...]:
        return tuple(c.finish_reason for c in self.choices if c.finish_reason is not None)

    def to_response_info(self) -> ChatResponseInfo:
        """The facts the pipeline reports to its observer."""
        usage = self.usage
        return ChatResponseInfo(
            response_id=self.id,
            response_model=self.model,
            finish_reasons=self.finish_reasons,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            output_text=self.text,
            cached_input_tokens=usage.cached_tokens if usage else None,
            reasoning_output_tokens=usage.reasoning_tokens if usage else None,
            image_input_tokens=usage.image_tokens if usage else None,
        )


@dataclass(frozen=True, slots=True)
class StreamChoice:
    """One choice's delta within a streamed chunk."""

    index: int
    role: str | None
    content: str | None = field(repr=False)
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One ``chat.completion.chunk`` event. The final usage chunk has no choices."""

    id: str | None
    model: str | None
    created: int | None
    choices: tuple[StreamChoice, ...]
    usage: Usage | None = None

    @property
    def text(self) -> str:
        """The content delta of choice 0 (``""`` when none)."""
        for choice in self.choices:
            if choice.index == 0:
                return choice.content or ""
        return ""


# --- parsing ------------------------------------------------------------------------------
def parse_chat_completion(data: object) -> ChatCompletion:
    """Parse a ``chat.completion`` body. Empty ``choices`` is a shape error."""
    fast = _fast_chat_completion(data)
    if fast is not None:
        return fast
    return _checked_chat_completion(data)


def _fast_chat_completion(data: object) -> ChatCompletion | None:
    """The common well-formed body, checked field by field without building JSON paths.

    Accepts a subset of what :func:`_checked_chat_completion` accepts (exact ``dict``, ``list``,
    ``str`` and ``int`` types, one choice); anything else returns ``None`` and goes the checked
    way, which names the JSON path of the problem. Same checks, same result, just no paths.
    """
    if type(data) is not dict:
        return None
    raw_choices = data.get("choices")
    if type(raw_choices) is not list or len(raw_choices) != 1:
        return None
    choice = raw_choices[0]
    if type(choice) is not dict:
        return None
    message = choice.get("message")
    if type(message) is not dict:
        return None
    role = message.get("role")
    content = message.get("content")
    finish_reason = choice.get("finish_reason")
    index = choice.get("index", 0)
    response_id = data.get("id")
    model = data.get("model")
    created = data.get("created")
    if not (
        (role is None or type(role) is str)
        and (content is None or type(content) is str)
        and (finish_reason is None or type(finish_reason) is str)
        and (index is None or type(index) is int)
        and (response_id is None or type(response_id) is str)
        and (model is None or type(model) is str)
        and (created is None or type(created) is int)
    ):
        return None
    raw_usage = data.get("usage")
    usage = None
    if raw_usage is not None:
        if type(raw_usage) is not dict:
            return None
        prompt = raw_usage.get("prompt_tokens")
        completion = raw_usage.get("completion_tokens")
        total = raw_usage.get("total_tokens")
        if not (
            (prompt is None or (type(prompt) is int and prompt >= 0))
            and (completion is None or (type(completion) is int and completion >= 0))
            and (total is None or (type(total) is int and total >= 0))
        ):
            return None
        usage = Usage(prompt, completion, total, *_details(raw_usage))
    return ChatCompletion(
        response_id,
        model,
        created,
        (
            Choice(
                0 if index is None else index,
                ChatMessage(role or "assistant", content),
                finish_reason,
            ),
        ),
        usage,
    )


def _checked_chat_completion(data: object) -> ChatCompletion:
    """Parse with a check and a JSON path at every step (raises :class:`ResponseShapeError`)."""
    obj = _object(data, "$")
    raw_choices = _list(obj.get("choices"), "$.choices")
    if not raw_choices:
        raise ResponseShapeError("$.choices", "is empty: the server produced no completion")
    choices = []
    for i, raw in enumerate(raw_choices):
        where = f"$.choices[{i}]"
        choice = _object(raw, where)
        message = _object(choice.get("message"), f"{where}.message")
        role = _opt_str(message.get("role"), f"{where}.message.role") or "assistant"
        content = _opt_str(message.get("content"), f"{where}.message.content")
        choices.append(
            Choice(
                index=_index(choice.get("index"), f"{where}.index", i),
                message=ChatMessage(role=role, content=content),
                finish_reason=_opt_str(choice.get("finish_reason"), f"{where}.finish_reason"),
            )
        )
    return ChatCompletion(
        id=_opt_str(obj.get("id"), "$.id"),
        model=_opt_str(obj.get("model"), "$.model"),
        created=_opt_int(obj.get("created"), "$.created"),
        choices=tuple(choices),
        usage=_usage(obj.get("usage"), "$.usage"),
    )


def parse_stream_chunk(data: object) -> StreamChunk:
    """Parse one ``chat.completion.chunk`` event (``choices`` may be empty)."""
    fast = _fast_stream_chunk(data)
    if fast is not None:
        return fast
    return _checked_stream_chunk(data)


def _fast_stream_chunk(data: object) -> StreamChunk | None:
    """The common chunk (one choice with a delta, no usage), checked without building JSON paths.

    Exact ``dict`` / ``str`` / ``int`` types only; anything else returns ``None`` and goes the
    checked way, which names the JSON path of a problem. Same checks, same result.
    """
    if type(data) is not dict:
        return None
    raw_choices = data.get("choices")
    if type(raw_choices) is not list or len(raw_choices) != 1 or data.get("usage") is not None:
        return None
    choice = raw_choices[0]
    if type(choice) is not dict:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    index = choice.get("index", 0)
    role = delta.get("role")
    content = delta.get("content")
    finish = choice.get("finish_reason")
    chunk_id = data.get("id")
    model = data.get("model")
    created = data.get("created")
    if not (
        type(index) is int
        and index >= 0
        and (role is None or type(role) is str)
        and (content is None or type(content) is str)
        and (finish is None or type(finish) is str)
        and (chunk_id is None or type(chunk_id) is str)
        and (model is None or type(model) is str)
        and (created is None or type(created) is int)
    ):
        return None
    return StreamChunk(
        chunk_id, model, created, (StreamChoice(index, role, content, finish),), None
    )


def _checked_stream_chunk(data: object) -> StreamChunk:
    obj = _object(data, "$")
    raw_choices = _list(obj.get("choices", []), "$.choices")
    choices = []
    for i, raw in enumerate(raw_choices):
        where = f"$.choices[{i}]"
        choice = _object(raw, where)
        delta = _object(choice.get("delta", {}), f"{where}.delta")
        choices.append(
            StreamChoice(
                index=_index(choice.get("index"), f"{where}.index", i),
                role=_opt_str(delta.get("role"), f"{where}.delta.role"),
                content=_opt_str(delta.get("content"), f"{where}.delta.content"),
                finish_reason=_opt_str(choice.get("finish_reason"), f"{where}.finish_reason"),
            )
        )
    return StreamChunk(
        id=_opt_str(obj.get("id"), "$.id"),
        model=_opt_str(obj.get("model"), "$.model"),
        created=_opt_int(obj.get("created"), "$.created"),
        choices=tuple(choices),
        usage=_usage(obj.get("usage"), "$.usage"),
    )


def parse_model_list(data: object) -> list[str]:
    """Parse a ``GET /models`` body into model ids."""
    obj = _object(data, "$")
    items = _list(obj.get("data"), "$.data")
    ids = []
    for i, raw in enumerate(items):
        item = _object(raw, f"$.data[{i}]")
        model_id = item.get("id")
        if not isinstance(model_id, str):
            raise ResponseShapeError(f"$.data[{i}].id", f"expected a str, got {_kind(model_id)}")
        ids.append(model_id)
    return ids


def extract_error_message(body: str) -> str | None:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``), if any.

    Also understands ``{"error": "text"}`` and ``{"message": "text"}``; ``None`` otherwise.
    """
    try:
        data = loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than MAX_DEPTH
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(error, str) and error:
        return error
    message = data.get("message")
    if isinstance(message, str) and message:
        return message
    return None


# --- helpers ------------------------------------------------------------------------------
def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ResponseShapeError(path, f"expected an object, got {_kind(value)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ResponseShapeError(path, f"expected an array, got {_kind(value)}")
    return value


def _opt_str(value: object, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ResponseShapeError(path, f"expected a str or null, got {_kind(value)}")


def _opt_int(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResponseShapeError(path, f"expected an int, got {_kind(value)}")
    return value


def _index(value: object, path: str, default: int) -> int:
    index = _opt_int(value, path)
    return default if index is None else index


def _usage(value: object, path: str) -> Usage | None:
    if value is None:
        return None
    obj = _object(value, path)
    counts = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        count = _opt_int(obj.get(name), f"{path}.{name}")
        if count is not None and count < 0:
            raise ResponseShapeError(f"{path}.{name}", f"expected >= 0, got {count}")
        counts[name] = count
    return Usage(**counts, **dict(zip(_DETAIL_FIELDS, _details(obj), strict=True)))


_DETAIL_FIELDS = ("cached_tokens", "reasoning_tokens", "image_tokens")


def _count(details: object, name: str) -> int | None:
    value = details.get(name) if type(details) is dict else None
    return value if type(value) is int and value >= 0 else None


def _details(usage: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    """Cached, reasoning and image token counts; optional, so a bad shape is just absent."""
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    if prompt is None and completion is None:
        return None, None, None
    return (
        _count(prompt, "cached_tokens"),
        _count(completion, "reasoning_tokens"),
        _count(prompt, "image_tokens"),
    )
