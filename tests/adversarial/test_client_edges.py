"""The client at the edges: size limits on decompressed bytes, typed parser failures, no
redirects, and attempts bounded by the call's remaining budget."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from collections.abc import Callable

import pytest
from hostile import COMPLETION, HostileServer

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.errors import (
    DEFAULT_CLASSIFIER,
    APIError,
    ErrorCode,
    PixelLMError,
    TimeoutError,
)
from pixel_llm_otel.resilience import deadline_scope

MESSAGES = [{"role": "user", "content": "describe"}]
BODY = json.dumps(COMPLETION).encode()
SLACK = 0.5


async def _chat(url: str, **options: object) -> PixelLMError | str:
    async with LMStudioClient(url, **options) as client:  # type: ignore[arg-type]
        try:
            return (await client.chat(MESSAGES, model="m")).text
        except PixelLMError as exc:
            return exc


async def _stream(url: str, **options: object) -> PixelLMError | str:
    async with LMStudioClient(url, **options) as client:  # type: ignore[arg-type]
        try:
            return (await client.chat_via_stream(MESSAGES, model="m")).text
        except PixelLMError as exc:
            return exc


def _code(outcome: PixelLMError | str) -> ErrorCode:
    assert isinstance(outcome, PixelLMError), outcome
    return outcome.code


# --- size limit ---------------------------------------------------------------------------
ENCODINGS: dict[str, tuple[Callable[[bytes], bytes], dict[str, str]]] = {
    "identity": (lambda b: b, {}),
    "gzip": (gzip.compress, {"Content-Encoding": "gzip"}),
    "deflate": (zlib.compress, {"Content-Encoding": "deflate"}),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_the_limit_counts_decompressed_bytes_exactly(
    hostile: HostileServer, encoding: str
) -> None:
    """A body of exactly max_response_bytes (decompressed) passes; one byte less of limit fails."""
    compress, headers = ENCODINGS[encoding]
    url = hostile.replying(f"exact-{encoding}", "200 OK", compress(BODY), **headers)
    assert await _chat(url, max_response_bytes=len(BODY)) == "a caption"
    failed = await _chat(url, max_response_bytes=len(BODY) - 1)
    assert _code(failed) is ErrorCode.RESPONSE_TOO_LARGE
    assert isinstance(failed, APIError)
    assert failed.retryable is False
    assert failed.context["max_response_bytes"] == len(BODY) - 1


@pytest.mark.parametrize("scenario", ["huge", "huge-chunked", "gzip-bomb", "deflate-bomb"], ids=str)
async def test_oversized_bodies_are_refused_with_the_default_limit(
    hostile: HostileServer, scenario: str
) -> None:
    """Huge plain, chunked and compressed-bomb bodies end in ERR_RESPONSE_TOO_LARGE (4 MiB)."""
    assert _code(await _chat(hostile.url(scenario))) is ErrorCode.RESPONSE_TOO_LARGE


async def test_a_stream_is_bounded_too(hostile: HostileServer) -> None:
    """An endless event stream stops at max_response_bytes with ERR_RESPONSE_TOO_LARGE."""
    outcome = await _stream(hostile.url("sse-endless"), max_response_bytes=256 * 1024)
    assert isinstance(outcome, PixelLMError)
    # delivered content first, so the stream reports the interruption with the cause chained
    cause = outcome.cause if outcome.code is ErrorCode.STREAM_INTERRUPTED else outcome
    assert isinstance(cause, PixelLMError)
    assert cause.code is ErrorCode.RESPONSE_TOO_LARGE


# --- parser failures ----------------------------------------------------------------------
BAD_BODIES = {
    "deep-array": (b"[" * 200_000 + b"]" * 200_000, ErrorCode.RESPONSE_MALFORMED),
    "deep-object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ErrorCode.RESPONSE_MALFORMED),
    "invalid-utf8": (b'{"choices": "\xff"}', ErrorCode.RESPONSE_MALFORMED),
    "truncated": (b'{"choices": [', ErrorCode.RESPONSE_MALFORMED),
    "nan-bytes": (b"\x00\x01\x02", ErrorCode.RESPONSE_MALFORMED),
    "array": (b"[]", ErrorCode.RESPONSE_INVALID),
    "string": (b'"text"', ErrorCode.RESPONSE_INVALID),
    "null": (b"null", ErrorCode.RESPONSE_INVALID),
    "choices-str": (b'{"choices": "x"}', ErrorCode.RESPONSE_INVALID),
    "content-int": (b'{"choices": [{"message": {"content": 42}}]}', ErrorCode.RESPONSE_INVALID),
    "index-bool": (
        b'{"choices": [{"index": true, "message": {"content": "x"}}]}',
        ErrorCode.RESPONSE_INVALID,
    ),
    "usage-negative": (
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -1}}',
        ErrorCode.RESPONSE_INVALID,
    ),
    "huge-number": (b'{"choices": [{"index": 1' + b"0" * 5000 + b"}]}", None),
}


@pytest.mark.parametrize("name", BAD_BODIES)
async def test_every_parser_failure_is_typed(hostile: HostileServer, name: str) -> None:
    """Deep nesting, bad UTF-8, wrong JSON types: a typed APIError, never a raw exception."""
    body, code = BAD_BODIES[name]
    outcome = await _chat(hostile.replying(f"bad-{name}", "200 OK", body))
    assert isinstance(outcome, APIError), outcome
    if code is None:  # any typed response error will do (int() of 5000 digits may be refused)
        assert outcome.code in (ErrorCode.RESPONSE_MALFORMED, ErrorCode.RESPONSE_INVALID)
    else:
        assert outcome.code is code


async def test_a_deep_error_body_keeps_the_status_code(hostile: HostileServer) -> None:
    """A 500 whose body nests 200,000 deep is still ERR_HTTP_SERVER_ERROR (no RecursionError)."""
    url = hostile.replying("deep-500", "500 Oops", b"[" * 200_000)
    # the body is refused before parsing (client/_json.py), so no parser sits at the
    # recursion limit while a garbage collection runs finalizers that would then fail
    assert _code(await _chat(url)) is ErrorCode.HTTP_SERVER_ERROR


async def test_a_non_http_reply_is_malformed_not_a_bad_request(hostile: HostileServer) -> None:
    """A garbage status line is ERR_RESPONSE_MALFORMED, classified so from aiohttp's error too."""
    outcome = await _chat(hostile.url("not-http"))
    assert _code(outcome) is ErrorCode.RESPONSE_MALFORMED
    assert isinstance(outcome, PixelLMError)
    assert outcome.cause is not None
    assert DEFAULT_CLASSIFIER.classify(outcome.cause).code is ErrorCode.RESPONSE_MALFORMED


@pytest.mark.parametrize("scenario", ["redirect-loop", "redirect-cross-host"])
async def test_models_listing_does_not_follow_redirects(
    hostile: HostileServer, scenario: str
) -> None:
    """GET /models does not follow a redirect either (not retryable, ERR_RESPONSE_INVALID)."""
    async with LMStudioClient(hostile.url(scenario)) as client:
        with pytest.raises(APIError) as caught:
            await client.list_models()
    assert caught.value.code is ErrorCode.RESPONSE_INVALID
    assert caught.value.retryable is False
    assert hostile.seen("elsewhere") == []


# --- the attempt in flight is bounded by the budget ---------------------------------------
@pytest.mark.parametrize("scenario", ["silence", "stall-after-headers", "trickle"])
@pytest.mark.parametrize("api", ["chat", "stream"])
async def test_an_attempt_never_outlives_the_budget(
    hostile: HostileServer, scenario: str, api: str
) -> None:
    """Inside a 0.3 s budget, an attempt with 60/120 s socket timeouts ends typed by 0.3 s."""
    run = _chat if api == "chat" else _stream
    started = time.monotonic()
    with deadline_scope(0.3):
        outcome = await run(hostile.url(scenario))
    elapsed = time.monotonic() - started
    assert elapsed <= 0.3 + SLACK, elapsed
    assert isinstance(outcome, TimeoutError), outcome


async def test_no_attempt_starts_once_the_budget_is_spent(hostile: HostileServer) -> None:
    """With nothing left of the budget, the client raises a timeout without sending anything."""
    before = len(hostile.seen("ok"))
    with deadline_scope(0.0):
        outcome = await _chat(hostile.url("ok"))
    assert isinstance(outcome, TimeoutError)
    assert outcome.code is ErrorCode.TIMEOUT_TOTAL
    await asyncio.sleep(0)
    assert len(hostile.seen("ok")) == before
