"""LMStudioClient over real loopback HTTP: requests, responses, pooling, secrecy, lifecycle."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from client_support import StubServer, completion

from pixel_llm_otel.client import ClientConfig, LMStudioClient
from pixel_llm_otel.errors import APIError, ErrorCode, ValidationError

MSG = [{"role": "user", "content": "describe the image"}]
SECRET = "sk-test-5ecret-value-42"


async def test_chat_parses_completion(server: StubServer) -> None:
    """A well-formed completion is parsed into text, ids, finish reasons and usage."""
    server.json_reply(completion("a red square"))
    async with LMStudioClient(server.base_url) as client:
        result = await client.chat(MSG, model="m1")
    assert result.text == "a red square"
    info = result.to_response_info()
    assert info.response_id == "chatcmpl-1"
    assert info.response_model == "test-model"
    assert info.finish_reasons == ("stop",)
    assert (info.input_tokens, info.output_tokens) == (11, 3)
    assert info.output_text == "a red square"
    assert server.seen[0].json["messages"] == MSG


@pytest.mark.parametrize(
    ("kwargs", "expected", "absent"),
    [
        ({"max_tokens": 0, "temperature": 0.0}, {"max_tokens": 0, "temperature": 0.0}, []),
        ({}, {}, ["max_tokens", "temperature"]),
        ({"max_tokens": 64, "temperature": 1.5}, {"max_tokens": 64, "temperature": 1.5}, []),
        ({"extra": {"top_p": 0.9, "seed": 0}}, {"top_p": 0.9, "seed": 0}, ["max_tokens"]),
    ],
    ids=["zeros-kept", "none-omitted", "values", "extra-merged"],
)
async def test_request_body_as_given(
    server: StubServer, kwargs: dict[str, Any], expected: dict[str, Any], absent: list[str]
) -> None:
    """The body carries exactly what was asked: 0 and 0.0 are sent, None is left out."""
    server.json_reply(completion())
    async with LMStudioClient(server.base_url) as client:
        await client.chat(MSG, model="m1", **kwargs)
    body = server.seen[0].json
    assert body["model"] == "m1"
    assert "stream" not in body
    for key, value in expected.items():
        assert body[key] == value
        assert type(body[key]) is type(value)
    for key in absent:
        assert key not in body


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages[0]"),
        ({"model": ""}, "model"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"extra": {"model": "other"}}, "extra"),
        ({"extra": {"max_tokens": 5}, "max_tokens": 5}, "extra"),
        ({"extra": {"obj": object()}}, "extra"),
    ],
    ids=[
        "no-messages",
        "str-messages",
        "no-role",
        "empty-model",
        "negative-max-tokens",
        "bool-max-tokens",
        "hot",
        "nan",
        "extra-reserved",
        "extra-twice",
        "extra-unjsonable",
    ],
)
async def test_bad_arguments_raise_validation_error(
    server: StubServer, kwargs: dict[str, Any], field: str
) -> None:
    """Bad arguments raise ValidationError naming the field, and nothing is sent."""
    call: dict[str, Any] = {"messages": MSG, "model": "m1", **kwargs}
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(ValidationError) as info:
            await client.chat(call.pop("messages"), **call)
    assert info.value.field == field
    assert server.seen == []


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


def _chunk(content: str | None = None, finish: str | None = None, **over: Any) -> str:
    import json

    delta = {} if content is None else {"content": content}
    body: dict[str, Any] = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    body.update(over)
    return json.dumps(body)


def _stream_handler(payload: bytes, status: int = 200) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(0, len(payload), 7):  # odd-sized writes: events split across reads
            await resp.write(payload[i : i + 7])
        await resp.write_eof()
        return resp

    return handler


async def test_stream_reassembles_text_and_usage(server: StubServer) -> None:
    """Chunks are yielded in order; collecting them gives the text, finish reason and usage."""
    usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    payload = (
        _sse(
            _chunk(
                None, choices=[{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]
            ),
            _chunk("a "),
            _chunk("red "),
            _chunk("square", "stop"),
            _chunk(choices=[], usage=usage),
            "[DONE]",
        )
        + b": trailing comment\n"
    )
    server.on("POST", "/v1/chat/completions", _stream_handler(payload))
    async with LMStudioClient(server.base_url) as client:
        texts = [c.text async for c in client.stream_chat(MSG, model="m1", max_tokens=0)]
        server.on("POST", "/v1/chat/completions", _stream_handler(payload))
        collected = await client.chat_via_stream(MSG, model="m1")
    assert texts == ["", "a ", "red ", "square", ""]
    assert collected.text == "a red square"
    assert collected.choices[0].message.role == "assistant"
    assert collected.finish_reasons == ("stop",)
    assert collected.usage is not None
    assert collected.usage.completion_tokens == 3
    body = server.seen[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 0
    assert server.seen[0].headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (_sse(_chunk("")), 200, ErrorCode.CONNECTION_RESET),
        (_sse(_chunk("partial")), 200, ErrorCode.STREAM_INTERRUPTED),
        (_sse("{broken"), 200, ErrorCode.RESPONSE_MALFORMED),
        (_sse(_chunk(choices="x")), 200, ErrorCode.RESPONSE_INVALID),
        (b'{"error": {"message": "overloaded"}}', 503, ErrorCode.HTTP_UNAVAILABLE),
    ],
    ids=["no-done-before-content", "no-done-after-content", "bad-json", "bad-shape", "503"],
)
async def test_stream_failures_are_typed(
    server: StubServer, payload: bytes, status: int, code: ErrorCode
) -> None:
    """A stream cut before [DONE], a bad event or an error status raises the typed error.

    Cut after content was delivered, it is an interruption (``ERR_STREAM_INTERRUPTED``)."""
    server.on("POST", "/v1/chat/completions", _stream_handler(payload, status))
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(Exception) as info:
            await client.chat_via_stream(MSG, model="m1")
    assert getattr(info.value, "code", None) is code


async def test_stream_without_choices_is_invalid(server: StubServer) -> None:
    """A stream carrying only [DONE] cannot be collected into a completion."""
    server.on("POST", "/v1/chat/completions", _stream_handler(_sse("[DONE]")))
    async with LMStudioClient(server.base_url) as client:
        with pytest.raises(APIError) as info:
            await client.chat_via_stream(MSG, model="m1")
    assert info.value.code is ErrorCode.RESPONSE_INVALID


async def test_list_models_and_health(server: StubServer) -> None:
    """GET /models lists ids; health reports them and says the server is available."""
    server.json_reply(
        {"object": "list", "data": [{"id": "qwen2-vl"}, {"id": "llava"}]},
        path="/v1/models",
        method="GET",
    )
    async with LMStudioClient(server.base_url) as client:
        assert await client.list_models() == ["qwen2-vl", "llava"]
        status = await client.health()
        assert await client.check_available() is True
    assert status.available
    assert status.models == ("qwen2-vl", "llava")
    assert status.error is None


async def test_health_false_fast_when_down(refused_url: str, server: StubServer) -> None:
    """Health is False, with the typed error, when nothing listens or the server hangs."""

    async def hang(request: web.Request) -> web.StreamResponse:
        assert server.release is not None
        await server.release.wait()
        return web.Response()

    server.on("GET", "/v1/models", hang)
    async with LMStudioClient(refused_url) as down:
        status = await down.health()
    assert not status.available
    assert status.error is not None
    assert status.error.code is ErrorCode.CONNECTION_REFUSED
    async with LMStudioClient(server.base_url, health_timeout=0.2) as slow:
        status = await slow.health()
    assert not status.available
    assert status.latency_s < 2.0
    assert status.error is not None
    assert status.error.category.value == "timeout"


async def test_api_key_sent_but_never_exposed(
    server: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The key goes out as a Bearer token and shows up in no log, repr, message or context."""
    caplog.set_level(logging.DEBUG)
    server.json_reply(completion())
    client = LMStudioClient(server.base_url, api_key=SECRET)
    await client.chat(MSG, model="m1")
    server.json_reply({"error": {"message": "invalid api key"}}, status=401)
    with pytest.raises(APIError) as info:
        await client.chat(MSG, model="m1")
    await client.close()
    assert server.seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    err = info.value
    exposed = [
        caplog.text,
        repr(client),
        repr(client.config),
        str(client.config),
        str(err),
        repr(err),
        repr(err.context),
        repr(err.to_dict()),
        err.body_excerpt or "",
    ]
    assert caplog.records, "the client should have logged something at DEBUG"
    for text in exposed:
        assert SECRET not in text


async def test_one_pooled_connection_for_sequential_calls(server: StubServer) -> None:
    """Sequential calls reuse one session and one keep-alive connection."""
    server.json_reply(completion())
    server.json_reply({"data": []}, path="/v1/models", method="GET")
    async with LMStudioClient(server.base_url) as client:
        for _ in range(5):
            await client.chat(MSG, model="m1")
        await client.list_models()
    assert len(server.seen) == 6
    assert server.connections() == 1


async def test_pool_limit_per_host_bounds_connections(server: StubServer) -> None:
    """With limit_per_host=2, six concurrent calls share at most two connections."""
    in_flight = 0
    peak = 0

    async def slowish(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.json_response(completion())

    server.on("POST", "/v1/chat/completions", slowish)
    async with LMStudioClient(server.base_url, pool_limit_per_host=2) as client:
        await asyncio.gather(*(client.chat(MSG, model="m1") for _ in range(6)))
    assert server.connections() == 2
    assert peak == 2


async def test_close_is_idempotent_and_final(server: StubServer) -> None:
    """close() twice is fine; a call after close raises a clear RuntimeError."""
    server.json_reply(completion())
    client = LMStudioClient(server.base_url)
    await client.chat(MSG, model="m1")
    await client.close()
    await client.close()
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.chat(MSG, model="m1")


async def test_close_without_use() -> None:
    """A client that never sent anything closes without creating a session."""
    client = LMStudioClient()
    await client.close()
    assert "closed" in repr(client)


@pytest.mark.parametrize(
    ("url", "address", "port", "path"),
    [
        ("http://localhost:1234/v1", "localhost", 1234, "/v1"),
        ("https://llm.example/v1/", "llm.example", 443, "/v1"),
        ("http://127.0.0.1/api/v1", "127.0.0.1", 80, "/api/v1"),
    ],
    ids=["default", "https-default-port", "http-default-port"],
)
def test_server_address_and_port(url: str, address: str, port: int, path: str) -> None:
    """server_address / server_port come from the base URL, default ports filled in."""
    client = LMStudioClient(url)
    assert (client.server_address, client.server_port) == (address, port)
    assert client.config.base_path == path
    assert not client.base_url.endswith("/")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"base_url": "ftp://x/v1"}, "base_url"),
        ({"base_url": "localhost:1234"}, "base_url"),
        ({"base_url": "http://h:99999/v1"}, "base_url"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"connect_timeout": float("inf")}, "connect_timeout"),
        ({"total_timeout": -1}, "total_timeout"),
        ({"pool_limit": 0}, "pool_limit"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": "a\nb"}, "api_key"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "scheme",
        "no-scheme",
        "bad-port",
        "zero-timeout",
        "inf-timeout",
        "negative-total",
        "zero-pool",
        "empty-key",
        "newline-key",
        "unknown-option",
    ],
)
def test_bad_config_names_the_field(options: dict[str, Any], field: str) -> None:
    """A bad config value raises ValidationError ERR_VALIDATION_CONFIG naming the field."""
    with pytest.raises(ValidationError) as info:
        ClientConfig.from_options(None, **options)
    assert info.value.field == field
    assert info.value.code is ErrorCode.VALIDATION_CONFIG


def test_credentials_in_url_rejected_without_echo() -> None:
    """A URL with user:password is refused and the password appears nowhere in the error."""
    with pytest.raises(ValidationError) as info:
        LMStudioClient("http://user:hunter2@localhost:1234/v1")
    assert "hunter2" not in str(info.value) + repr(info.value.context) + repr(info.value.value)


def test_timedelta_durations_normalised() -> None:
    """Durations given as timedelta are stored as float seconds."""
    from datetime import timedelta

    config = ClientConfig(read_timeout=timedelta(seconds=3), total_timeout=None)
    assert config.read_timeout == 3.0
    assert config.total_timeout is None


@pytest.mark.parametrize(
    ("read", "total", "left", "expected_read"),
    [
        (60.0, 120.0, 30.0, None),  # both capped to what is left: the total fires first
        (10.0, 120.0, 30.0, 10.0),  # a shorter read timeout still bounds each read
        (60.0, 20.0, 30.0, None),  # a read timeout past the total could never fire
    ],
    ids=["capped-equal", "read-shorter", "read-longer"],
)
def test_attempt_timeout_keeps_a_read_timer_only_where_it_can_fire_first(
    read: float, total: float, left: float, expected_read: float | None
) -> None:
    """Under a deadline, every timeout is capped; a read timeout >= the total is dropped."""
    from aiohttp import ClientTimeout

    from pixel_llm_otel.client._inbound import attempt_timeout
    from pixel_llm_otel.resilience import deadline_scope

    clock = [100.0]
    with deadline_scope(left, clock=lambda: clock[0]):
        got = attempt_timeout(ClientTimeout(total=total, sock_connect=5.0, sock_read=read))
    assert got.total == min(total, left)
    assert got.sock_connect == 5.0
    assert got.sock_read == expected_read
