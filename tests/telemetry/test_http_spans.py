"""HTTP attempt spans: one ``POST`` per attempt under ``chat {model}``, whatever the host runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind
from otel_support import REQUEST, Captured, make_captured

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.resilience.retry import RetryConfig, RetryPolicy
from pixel_llm_otel.telemetry import PixelLLMInstrumentor

SECRET = "sk-very-secret-key-123"
AIOHTTP_SCOPE = "opentelemetry.instrumentation.aiohttp_client"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}


class _Server:
    """A loopback server: 503 for the first ``fail_first`` requests, then 200; keeps headers."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.headers: list[dict[str, str]] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if len(self.headers) <= self.fail_first:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response(ANSWER)


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    srv = _Server(fail_first=1)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.base_url = f"http://127.0.0.1:{port}/v1"
    yield srv
    await runner.cleanup()


@pytest.fixture(autouse=True)
def _host_aiohttp_off() -> Iterator[None]:
    """The host's aiohttp instrumentation never outlives a test."""
    yield
    if AioHttpClientInstrumentor().is_instrumented_by_opentelemetry:
        AioHttpClientInstrumentor().uninstrument()


async def _no_sleep(_seconds: float) -> None:
    return None


async def _chat_with_retry(cap: Captured, base_url: str, **client: Any) -> None:
    """One chat operation through our client: a 503, then a 200 (two attempts)."""
    policy = RetryPolicy(
        RetryConfig(max_attempts=3, jitter=False), name="llm", async_sleep=_no_sleep
    )
    async with LMStudioClient(base_url, api_key=SECRET, **client) as llm:
        with cap.observer.chat(REQUEST) as c:
            await policy.call_async(
                lambda: llm.chat([{"role": "user", "content": "hi"}], model="m")
            )
            c.attempts(2)


def _traceparent(headers: dict[str, str]) -> tuple[str, str]:
    _version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    return trace_id, span_id


def _posts(cap: Captured) -> list[Any]:
    return [s for s in cap.spans() if s.name == "POST"]


async def test_attempt_spans_nest_under_chat_and_propagate(server: _Server) -> None:
    """Two POST spans under chat; the resent one has resend_count; traceparent matches."""
    cap = make_captured()
    await _chat_with_retry(cap, server.base_url)

    chat = cap.span("chat qwen2-vl")
    posts = _posts(cap)
    assert len(posts) == 2
    assert all(s.kind is SpanKind.CLIENT for s in posts)
    assert all(s.parent is not None and s.parent.span_id == chat.context.span_id for s in posts)
    assert [(s.attributes or {}).get("http.request.resend_count") for s in posts] == [None, 1]
    assert [(s.attributes or {}).get("http.response.status_code") for s in posts] == [503, 200]
    assert (posts[0].attributes or {}).get("error.type") == "503"
    assert (posts[1].attributes or {})["url.full"] == server.base_url + "/chat/completions"
    sent = [_traceparent(h) for h in server.headers]
    assert sent == [
        (format(chat.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in posts
    ]


async def test_credentials_never_reach_telemetry(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even capturing every request header, no span attribute or event holds the API key."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    cap = make_captured(capture_content="span_only")
    await _chat_with_retry(cap, server.base_url)

    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"  # the request did carry it
    posts = _posts(cap)
    assert len(posts) == 2
    assert all(
        (s.attributes or {}).get("http.request.header.authorization") == ("[REDACTED]",)
        for s in posts
    )
    everything: list[str] = []
    for span in cap.spans():
        everything.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            everything.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    assert any(item.startswith("http.request.header.content_type") for item in everything)
    assert [item for item in everything if SECRET in item] == []


def _instrument_host(tracer_provider: Any) -> None:
    AioHttpClientInstrumentor().instrument(tracer_provider=tracer_provider)


@pytest.mark.parametrize("order", ["host-first", "ours-first"])
@pytest.mark.parametrize("uninstrument", ["neither", "host", "ours"])
async def test_host_aiohttp_instrumentation_never_doubles_the_post_span(
    server: _Server, order: str, uninstrument: str
) -> None:
    """With the host's aiohttp instrumentation on too: still exactly one POST per attempt."""
    if order == "host-first":
        cap = make_captured(before=_instrument_host)
    else:
        cap = make_captured()
        _instrument_host(cap.tracer_provider)
    if uninstrument == "host":
        AioHttpClientInstrumentor().uninstrument()
    elif uninstrument == "ours":
        PixelLLMInstrumentor().uninstrument()

    await _chat_with_retry(cap, server.base_url)

    posts = _posts(cap)
    if uninstrument == "ours":  # only the host's instrumentation is left: its spans, once each
        assert [s.name for s in cap.spans()] == ["POST", "POST"]
        assert {s.instrumentation_scope.name for s in posts} == {AIOHTTP_SCOPE}
        return
    chat = cap.span("chat qwen2-vl")
    assert len(posts) == 2, [(s.name, s.instrumentation_scope.name) for s in cap.spans()]
    assert {s.instrumentation_scope.name for s in posts} == {"pixel_llm_otel"}
    assert all(s.parent is not None and s.parent.span_id == chat.context.span_id for s in posts)
    assert [(s.attributes or {}).get("http.request.resend_count") for s in posts] == [None, 1]
    assert [_traceparent(h)[1] for h in server.headers] == [
        format(s.context.span_id, "016x") for s in posts
    ]


async def test_the_hosts_own_sessions_keep_their_spans(server: _Server) -> None:
    """Suppression covers only our requests: the host's own aiohttp calls are still traced."""
    cap = make_captured(before=_instrument_host)
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.base_url + "/chat/completions", json={}) as response,
    ):
        assert response.status == 503
    (span,) = cap.spans()
    assert span.name == "POST"
    assert span.instrumentation_scope.name == AIOHTTP_SCOPE


async def test_suppressed_calls_make_no_spans_and_no_metrics(server: _Server) -> None:
    """Inside suppress_instrumentation(): the call works, and nothing of ours is recorded."""
    cap = make_captured()
    server.fail_first = 0
    with suppress_instrumentation():
        await _chat_with_retry(cap, server.base_url)
    assert len(server.headers) == 1
    assert "traceparent" not in server.headers[0]
    assert cap.spans() == []
    assert cap.points("gen_ai.client.operation.duration") == []


def test_http_metrics_keyword_is_deprecated() -> None:
    """The old http_metrics keyword warns at the caller's line; the spans stay ours."""
    with pytest.warns(DeprecationWarning, match="http_metrics"):
        make_captured(http_metrics=True)


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("http://h:1/v1/chat/completions", "http://h:1/v1/chat/completions"),
        ("http://h:1/v1/chat?api_key=s#frag", "http://h:1/v1/chat"),
        ("http://user:pw@h:1/v1/chat", "http://h:1/v1/chat"),
    ],
    ids=["plain", "query-and-fragment", "user-info"],
)
def test_url_filter_drops_query_user_and_fragment(url: str, recorded: str) -> None:
    """Recorded URLs never carry a query string, user info or fragment."""
    from yarl import URL

    from pixel_llm_otel.telemetry._http import url_filter

    assert url_filter(URL(url)) == recorded
    assert url_filter(object()) == ""


@pytest.mark.parametrize("host", [False, True], ids=["no-host-instrumentation", "host-aiohttp"])
async def test_the_client_adds_trace_hooks_only_for_a_hosts_instrumentation(
    server: _Server, host: bool
) -> None:
    """No trace config of ours per request; the scrubber goes first once a host adds its own."""
    cap = make_captured()
    if host:
        _instrument_host(cap.tracer_provider)
    async with LMStudioClient(server.base_url) as llm:
        session = llm._session_for_loop()
        configs = list(session.trace_configs)
        server.fail_first = 0
        await llm.chat([{"role": "user", "content": "hi"}], model="m")
    if not host:
        assert configs == []
    else:
        assert len(configs) == 2
        assert not hasattr(configs[0], "_is_instrumented_by_opentelemetry")  # the scrubber
        assert hasattr(configs[1], "_is_instrumented_by_opentelemetry")
    assert [s.instrumentation_scope.name for s in _posts(cap)] == ["pixel_llm_otel"]
