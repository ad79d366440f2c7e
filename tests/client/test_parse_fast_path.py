"""The fast response and stream-chunk parsers agree with the checked ones wherever they accept."""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any

import pytest

from pixel_llm_otel.client._types import (
    ResponseShapeError,
    _checked_chat_completion,
    _checked_stream_chunk,
    _fast_chat_completion,
    _fast_stream_chunk,
)

_VALUES: list[object] = [None, 0, 1, -1, True, False, 1.5, "", "x", [], {}, [1], {"a": 1}]
_DROP = object()
_BASE: dict[str, Any] = {
    "id": "c1",
    "model": "m",
    "created": 1,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}
_PATHS: list[tuple[str | int, ...]] = [
    ("id",),
    ("model",),
    ("created",),
    ("choices",),
    ("usage",),
    ("choices", 0),
    ("choices", 0, "index"),
    ("choices", 0, "message"),
    ("choices", 0, "finish_reason"),
    ("choices", 0, "message", "role"),
    ("choices", 0, "message", "content"),
    ("usage", "prompt_tokens"),
    ("usage", "completion_tokens"),
    ("usage", "total_tokens"),
]


def _mutate(body: Any, path: tuple[str | int, ...], value: object) -> Any:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    if value is _DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


def _bodies() -> list[object]:
    bodies: list[object] = [_BASE]
    bodies += [_mutate(_BASE, p, v) for p in _PATHS for v in [*_VALUES, _DROP]]
    rng = random.Random(0)
    for _ in range(3000):
        body: Any = _BASE
        for path in rng.sample(_PATHS, rng.randint(1, 3)):
            with contextlib.suppress(KeyError, TypeError, IndexError):
                body = _mutate(body, path, rng.choice([*_VALUES, _DROP]))
        bodies.append(body)
    bodies += [{"choices": [_BASE["choices"][0]] * 2}, {"choices": []}, [], None, "x"]
    return bodies


def _checked(body: object) -> object:
    try:
        return _checked_chat_completion(body)
    except ResponseShapeError:
        return "rejected"


def test_fast_path_matches_checked_parser() -> None:
    """On ~3,200 valid and mutated bodies the fast path returns exactly what the checked
    parser returns, or declines (None) and leaves the body to it."""
    taken = 0
    for body in _bodies():
        fast = _fast_chat_completion(body)
        if fast is not None:
            taken += 1
            assert fast == _checked(body), body
    assert taken > 0  # the fast path is really exercised


@pytest.mark.parametrize(
    "body",
    [{"choices": []}, {"choices": [{"message": {"content": 3}}]}, [], None],
    ids=["empty-choices", "content-not-str", "list", "null"],
)
def test_fast_path_declines_unusable_bodies(body: object) -> None:
    """Bodies the checked parser rejects never come out of the fast path."""
    assert _fast_chat_completion(body) is None


_CHUNK: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "model": "m",
    "created": 1,
    "choices": [{"index": 0, "delta": {"role": None, "content": "hi"}, "finish_reason": None}],
    "usage": None,
}
_CHUNK_PATHS: list[tuple[str | int, ...]] = [
    ("id",),
    ("model",),
    ("created",),
    ("choices",),
    ("usage",),
    ("choices", 0),
    ("choices", 0, "index"),
    ("choices", 0, "delta"),
    ("choices", 0, "finish_reason"),
    ("choices", 0, "delta", "role"),
    ("choices", 0, "delta", "content"),
]


def _checked_chunk(body: object) -> object:
    try:
        return _checked_stream_chunk(body)
    except ResponseShapeError:
        return "rejected"


def test_stream_chunk_fast_path_matches_checked_parser() -> None:
    """On ~3,000 valid and mutated stream chunks the fast path returns exactly what the checked
    parser returns, or declines (None)."""
    bodies: list[object] = [_CHUNK]
    bodies += [_mutate(_CHUNK, p, v) for p in _CHUNK_PATHS for v in [*_VALUES, _DROP]]
    rng = random.Random(1)
    for _ in range(3000):
        body: Any = _CHUNK
        for path in rng.sample(_CHUNK_PATHS, rng.randint(1, 3)):
            with contextlib.suppress(KeyError, TypeError, IndexError):
                body = _mutate(body, path, rng.choice([*_VALUES, _DROP]))
        bodies.append(body)
    taken = 0
    for body in bodies:
        fast = _fast_stream_chunk(body)
        if fast is not None:
            taken += 1
            assert fast == _checked_chunk(body), body
    assert taken > 100
