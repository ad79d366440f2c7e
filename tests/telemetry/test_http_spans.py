"""HTTP attempt spans from the aiohttp client instrumentation, under ``chat {model}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.trace import SpanKind
from otel_support import REQUEST, Captured, make_captured

from pixel_llm_otel.resilience.retry import RetryConfig, RetryPolicy

SECRET = "sk-very-secret-key-123"


class _Server:
    """A loopback server: 503 for the first ``fail_first`` requests, then 200; keeps headers."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if len(self.headers) <= self.fail_first:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"id": "chatcmpl-1", "choices": []})


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
    srv.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    yield srv
    await runner.cleanup()


async def _no_sleep(_seconds: float) -> None:
    return None


async def _chat_with_retry(cap: Captured, url: str) -> None:
    policy = RetryPolicy(
        RetryConfig(max_attempts=3, jitter=False), name="llm", async_sleep=_no_sleep
    )

    async def attempt() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url, json={"model": "m"}, headers={"Authorization": f"Bearer {SECRET}"}
            ) as response,
        ):
            response.raise_for_status()
            return await response.json()

    with cap.observer.chat(REQUEST) as c:
        await policy.call_async(attempt)
        c.attempts(2)


def _traceparent(headers: dict[str, str]) -> tuple[str, str]:
    _version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    return trace_id, span_id


async def test_attempt_spans_nest_under_chat_and_propagate(server: _Server) -> None:
    """Two POST spans under chat; the resent one has resend_count; traceparent matches."""
    cap = make_captured()
    await _chat_with_retry(cap, server.url)

    chat = cap.span("chat qwen2-vl")
    posts = [s for s in cap.spans() if s.name == "POST"]
    assert len(posts) == 2
    assert all(s.kind is SpanKind.CLIENT for s in posts)
    assert all(s.parent is not None and s.parent.span_id == chat.context.span_id for s in posts)
    assert [(s.attributes or {}).get("http.request.resend_count") for s in posts] == [None, 1]
    assert [e.name for e in chat.events] == ["pixel_llm.retry"]
    sent = [_traceparent(h) for h in server.headers]
    assert sent == [
        (format(chat.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in posts
    ]


async def test_credentials_never_reach_telemetry(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even capturing every request header, no span attribute or event holds the API key."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
    cap = make_captured(capture_content=True)
    await _chat_with_retry(cap, server.url + f"?api_key={SECRET}")

    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"  # the request did carry it
    posts = [s for s in cap.spans() if s.name == "POST"]
    assert posts
    assert all(
        (s.attributes or {}).get("http.request.header.authorization") == ("[REDACTED]",)
        for s in posts
    )
    everything: list[str] = []
    for span in cap.spans():
        everything.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            everything.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    assert any(item.startswith("http.request.header.") for item in everything)
    assert [item for item in everything if SECRET in item] == []


def _http_metric_names(cap: Captured) -> list[str]:
    data = cap.reader.get_metrics_data()
    return [
        m.name
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name.startswith("http.")
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({}, False), ({"http_metrics": True}, True)],
    ids=["default-off", "opted-in"],
)
async def test_http_duration_metric_only_when_asked(
    server: _Server, kwargs: dict[str, Any], expected: bool
) -> None:
    """The instrumentation's HTTP duration histogram (not in the contract) is opt-in."""
    cap = make_captured(**kwargs)
    await _chat_with_retry(cap, server.url)

    assert len([s for s in cap.spans() if s.name == "POST"]) == 2  # the spans stay either way
    assert bool(_http_metric_names(cap)) is expected


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
