"""Server JSON is refused before parsing when it nests deeper than MAX_DEPTH; nothing else
changes: ordinary bodies parse as ``json.loads`` parses them, brackets in strings do not count."""

from __future__ import annotations

import json
import sys

import pytest

from pixel_llm_otel.client._inbound import decode
from pixel_llm_otel.client._json import MAX_DEPTH, TooDeep, loads, nesting
from pixel_llm_otel.client._types import extract_error_message, parse_chat_completion
from pixel_llm_otel.errors import APIError, ErrorCode

_CHAT = {
    "id": "c1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "a [[{ caption"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2},
}
_WIDE = {"choices": [{"logprobs": [{"t": "a[b{", "top": [1, 2]} for _ in range(5000)]}]}
_STRINGS = ["[" * 10_000, "]" * 10_000, 'quote \\" [[', "back\\slash [", "\\\\", '"]]]"']


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    half = depth // 2  # alternating [{"a": [{"a": ...
    return b'[{"a":' * half + b"1" + b"}]" * half


@pytest.mark.parametrize(
    "value",
    [_CHAT, _WIDE, {"error": {"message": "no [[{"}}, _STRINGS, [], {}, "x", 1, None],
    ids=["chat", "wide-5000-objects", "error", "strings", "empty-list", "empty-object",
         "string", "number", "null"],
)  # fmt: skip
def test_ordinary_json_parses_as_json_loads_does(value: object) -> None:
    """Bodies within the depth limit, wide ones and bracket-filled strings included, parse to
    exactly what json.loads gives, from bytes and from str."""
    text = json.dumps(value)
    assert loads(text.encode()) == json.loads(text)
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("kind", ["array", "object", "alternating"])
def test_the_limit_is_exact(kind: str) -> None:
    """MAX_DEPTH levels parse; one more is refused with TooDeep, before any parsing."""
    depth = MAX_DEPTH if kind != "alternating" else MAX_DEPTH // 2 * 2
    assert nesting(_nested(depth, kind)) == depth
    loads(_nested(depth, kind))
    deeper = depth + (1 if kind != "alternating" else 2)
    with pytest.raises(TooDeep) as caught:
        loads(_nested(deeper, kind))
    assert caught.value.depth == deeper
    assert str(MAX_DEPTH) in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        # closing brackets inside a string must not hide the depth that follows
        b'["' + b"]" * 5000 + b'", ' + _nested(MAX_DEPTH + 5, "array") + b"]",
        b'["\\"]]]]]", ' + _nested(MAX_DEPTH + 5, "array") + b"]",
    ],
    ids=["unclosed", "closed", "objects", "closers-in-a-string", "escaped-quote"],
)
def test_deep_bodies_are_refused_without_recursion(body: bytes) -> None:
    """A deep body is refused even with almost no recursion headroom left: the check does
    not recurse, and the parser is never entered (json.loads would raise RecursionError)."""
    headroom = 60

    def at_depth(n: int) -> BaseException | None:
        if n:
            return at_depth(n - 1)
        try:
            loads(body)
        except BaseException as exc:  # what escaped, RecursionError included
            return exc
        return None

    outcome = at_depth(sys.getrecursionlimit() - _stack_depth() - headroom)
    assert isinstance(outcome, TooDeep), outcome


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


def test_a_deep_body_is_a_typed_malformed_response() -> None:
    """The client's decode turns it into ERR_RESPONSE_MALFORMED naming the limit, caused by
    TooDeep (not a RecursionError from inside the parser)."""
    with pytest.raises(APIError) as caught:
        decode(b"[" * 200_000, parse_chat_completion, {"url_path": "/v1/chat/completions"})
    assert caught.value.code is ErrorCode.RESPONSE_MALFORMED
    assert isinstance(caught.value.cause, TooDeep)
    assert f"nested deeper than {MAX_DEPTH}" in str(caught.value)


def test_a_deep_error_body_has_no_message() -> None:
    """An error body nested too deep gives no server message (the status speaks instead)."""
    assert extract_error_message('{"error": {"message": "x"}, "d": ' + "[" * 50_000) is None
    assert extract_error_message('{"error": {"message": "x [[["}}') == "x [[["
