"""Every transport and HTTP failure of LMStudioClient becomes the right typed error and code."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
from aiohttp import web
from client_support import StubServer, completion

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.errors import (
    APIError,
    ConnectionError,
    ErrorCode,
    PixelLMError,
    TimeoutError,
)

MSG = [{"role": "user", "content": "describe the image"}]

OPENAI_400 = {
    "error": {
        "message": "max_tokens is too large for this model",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": None,
    }
}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_type", "code", "retry_after"),
    [
        (400, OPENAI_400, None, APIError, ErrorCode.HTTP_BAD_REQUEST, None),
        (401, {"error": {"message": "bad key"}}, None, APIError, ErrorCode.API_KEY_INVALID, None),
        (404, {"error": "Unexpected endpoint"}, None, APIError, ErrorCode.HTTP_NOT_FOUND, None),
        (422, "not json at all", None, APIError, ErrorCode.HTTP_CLIENT_ERROR, None),
        (
            429,
            {"error": {"message": "slow"}},
            {"Retry-After": "7"},
            APIError,
            ErrorCode.RATE_LIMITED,
            7.0,
        ),
        (500, {"error": {"message": "boom"}}, None, APIError, ErrorCode.HTTP_SERVER_ERROR, None),
        (502, "", None, APIError, ErrorCode.HTTP_UNAVAILABLE, None),
        (
            503,
            {"error": {"message": "busy"}},
            {"Retry-After": "2"},
            APIError,
            ErrorCode.HTTP_UNAVAILABLE,
            2.0,
        ),
        (504, "", None, APIError, ErrorCode.HTTP_UNAVAILABLE, None),
    ],
    ids=[
        "400-openai",
        "401",
        "404-string-error",
        "422-text",
        "429-seconds",
        "500",
        "502",
        "503-retry-after",
        "504",
    ],
)
async def test_http_status_maps_to_api_error(
    server: StubServer,
    status: int,
    body: Any,
    headers: dict[str, str] | None,
    error_type: type[PixelLMError],
    code: ErrorCode,
    retry_after: float | None,
) -> None:
    """An HTTP error status raises APIError with status, code, Retry-After and context."""
    server.json_reply(body, status=status, headers=headers)
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(error_type) as info:
            await client.chat(MSG, model="m1")
    err = info.value
    assert isinstance(err, APIError)
    assert err.status == status
    assert err.code is code
    assert err.retry_after == retry_after
    assert err.context["url_path"] == "/v1/chat/completions"
    assert err.context["model"] == "m1"
    assert err.context["http_status"] == status
    assert f"HTTP {status}" in err.message


async def test_openai_error_message_is_extracted(server: StubServer) -> None:
    """The server's own message from an {"error": {...}} body is in the message and context."""
    server.json_reply(OPENAI_400, status=400)
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(APIError) as info:
            await client.chat(MSG, model="m1")
    assert "max_tokens is too large" in info.value.message
    assert info.value.context["server_message"] == "max_tokens is too large for this model"
    assert json.loads(info.value.body_excerpt or "") == OPENAI_400


async def test_retry_after_http_date(server: StubServer) -> None:
    """A Retry-After HTTP-date becomes the seconds left until that date."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.json_reply({"error": {"message": "later"}}, status=429, headers={"Retry-After": when})
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(APIError) as info:
            await client.chat(MSG, model="m1")
    assert info.value.code is ErrorCode.RATE_LIMITED
    assert info.value.retry_after is not None
    assert 20.0 < info.value.retry_after <= 31.0


async def test_error_body_is_bounded(server: StubServer) -> None:
    """A huge error body is read only up to the limit and kept as a short excerpt."""
    server.json_reply("x" * 200_000, status=500)
    async with LMStudioClient(server.base_url, max_error_body_bytes=4096) as client:
        with pytest.raises(APIError) as info:
            await client.chat(MSG, model="m1")
    excerpt = info.value.body_excerpt or ""
    assert excerpt.startswith("xxxx")
    assert len(excerpt) < 700
    assert "3584 more chars" in excerpt


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        ("{not json", ErrorCode.RESPONSE_MALFORMED, None),
        ("<html>proxy error</html>", ErrorCode.RESPONSE_MALFORMED, None),
        (completion(choices=[]), ErrorCode.RESPONSE_INVALID, "$.choices"),
        ({"id": "x"}, ErrorCode.RESPONSE_INVALID, "$.choices"),
        ([1, 2], ErrorCode.RESPONSE_INVALID, "$"),
        (completion(choices="nope"), ErrorCode.RESPONSE_INVALID, "$.choices"),
        (completion(choices=[{"index": 0}]), ErrorCode.RESPONSE_INVALID, "$.choices[0].message"),
        (
            completion(choices=[{"message": {"role": "assistant", "content": 5}}]),
            ErrorCode.RESPONSE_INVALID,
            "$.choices[0].message.content",
        ),
        (
            completion(usage={"prompt_tokens": "7"}),
            ErrorCode.RESPONSE_INVALID,
            "$.usage.prompt_tokens",
        ),
        (completion(id=12), ErrorCode.RESPONSE_INVALID, "$.id"),
    ],
    ids=[
        "truncated-json",
        "html",
        "empty-choices",
        "no-choices",
        "array",
        "choices-str",
        "no-message",
        "content-int",
        "usage-str",
        "id-int",
    ],
)
async def test_unusable_body_is_api_error(
    server: StubServer, body: Any, code: ErrorCode, path: str | None
) -> None:
    """A 200 body that is not JSON, or JSON of the wrong shape, is an APIError, not a KeyError."""
    server.json_reply(body)
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(APIError) as info:
            await client.chat(MSG, model="m1")
    assert info.value.code is code
    assert info.value.status is None
    assert info.value.__cause__ is not None
    if path is not None:
        assert info.value.context["json_path"] == path


async def test_connection_refused(refused_url: str) -> None:
    """Nothing listening: ConnectionError ERR_CONNECTION_REFUSED chained to aiohttp's error."""
    async with LMStudioClient(refused_url) as client:
        started = time.perf_counter()
        with pytest.raises(ConnectionError) as info:
            await client.chat(MSG, model="m1")
    assert time.perf_counter() - started < 2.0
    assert info.value.code is ErrorCode.CONNECTION_REFUSED
    assert info.value.__cause__ is not None
    assert info.value.context["server_address"] == "127.0.0.1"


async def test_reset_mid_body(server: StubServer) -> None:
    """Headers and half a body, then the connection drops: ERR_CONNECTION_RESET."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b'{"id": "chatcmpl-1", "choi')
        assert request.transport is not None
        request.transport.abort()
        return resp

    server.on("POST", "/v1/chat/completions", handler)
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(ConnectionError) as info:
            await client.chat(MSG, model="m1")
    assert info.value.code is ErrorCode.CONNECTION_RESET
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"read_timeout": 0.2}, ErrorCode.TIMEOUT_READ),
        ({"read_timeout": 30.0, "total_timeout": 0.3}, ErrorCode.TIMEOUT_TOTAL),
    ],
    ids=["read", "total"],
)
async def test_no_answer_times_out(
    server: StubServer, options: dict[str, float], code: ErrorCode
) -> None:
    """A server that never answers: TimeoutError with the read or total code, on time."""

    async def hang(request: web.Request) -> web.StreamResponse:
        assert server.release is not None
        await server.release.wait()
        return web.Response()

    server.on("POST", "/v1/chat/completions", hang)
    async with LMStudioClient(server.base_url, **options) as client:
        started = time.perf_counter()
        with pytest.raises(TimeoutError) as info:
            await client.chat(MSG, model="m1")
    assert time.perf_counter() - started < 3.0
    assert info.value.code is code
    assert info.value.__cause__ is not None
