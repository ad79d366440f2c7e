"""SyncLMStudioClient and the private loop thread it runs on."""

from __future__ import annotations

import asyncio
import threading

import pytest
from client_support import StubServer, completion

from pixel_llm_otel._loop_thread import LoopThread
from pixel_llm_otel.client import SyncLMStudioClient
from pixel_llm_otel.errors import APIError, ConnectionError, ErrorCode, TimeoutError

MSG = [{"role": "user", "content": "describe"}]


def test_sync_chat_reuses_one_loop_and_connection(server: StubServer) -> None:
    """Repeated sync calls run on one private loop: one session, one connection."""
    server.json_reply(completion("hello"))
    with SyncLMStudioClient(server.base_url) as client:
        texts = [client.chat(MSG, model="m1", max_tokens=0).text for _ in range(4)]
    assert texts == ["hello"] * 4
    assert server.connections() == 1
    assert server.seen[0].json["max_tokens"] == 0


async def test_sync_facade_inside_a_running_loop(server: StubServer) -> None:
    """Called from a thread whose loop is running (as in Jupyter), the facade still works."""
    asyncio.get_running_loop()  # this test's own loop is running on this thread
    server.json_reply(completion("from jupyter"))
    server.json_reply({"data": [{"id": "m1"}]}, path="/v1/models", method="GET")
    client = SyncLMStudioClient(server.base_url)
    try:
        assert client.chat(MSG, model="m1").text == "from jupyter"
        assert client.list_models() == ["m1"]
        assert client.check_available() is True
    finally:
        client.close()


def test_sync_errors_propagate_unchanged(server: StubServer, refused_url: str) -> None:
    """Typed errors from the loop thread reach the caller with their type, code and cause."""
    server.json_reply({"error": {"message": "nope"}}, status=429, headers={"Retry-After": "3"})
    with SyncLMStudioClient(server.base_url) as client, pytest.raises(APIError) as info:
        client.chat(MSG, model="m1")
    assert info.value.code is ErrorCode.RATE_LIMITED
    assert info.value.retry_after == 3.0
    with SyncLMStudioClient(refused_url) as down, pytest.raises(ConnectionError) as refused:
        down.chat(MSG, model="m1")
    assert refused.value.code is ErrorCode.CONNECTION_REFUSED
    assert refused.value.__cause__ is not None


def test_sync_stream_yields_chunks(server: StubServer) -> None:
    """The sync stream iterates chunks fetched on the private loop."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for text in ("one ", "two"):
            chunk = completion(object="chat.completion.chunk")
            chunk["choices"] = [{"index": 0, "delta": {"content": text}, "finish_reason": None}]
            import json

            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    server.on("POST", "/v1/chat/completions", handler)
    with SyncLMStudioClient(server.base_url) as client:
        assert [c.text for c in client.stream_chat(MSG, model="m1")] == ["one ", "two"]
        assert client.chat_via_stream(MSG, model="m1").text == "one two"


def test_sync_close_idempotent_and_final(server: StubServer) -> None:
    """close() twice is fine; calls afterwards raise RuntimeError; the loop thread is gone."""
    server.json_reply(completion())
    client = SyncLMStudioClient(server.base_url)
    client.chat(MSG, model="m1")
    runner = client._runner
    client.close()
    client.close()
    assert not runner.is_running
    with pytest.raises(RuntimeError, match="closed"):
        client.chat(MSG, model="m1")


def test_loop_thread_runs_coroutines_off_the_caller_thread() -> None:
    """Coroutines run on the one named daemon thread, not the caller's."""
    runner = LoopThread(name="t-loop")

    async def where() -> str:
        return threading.current_thread().name

    try:
        assert runner.run(where()) == "t-loop"
        assert runner.run(where()) == "t-loop"
        assert runner._thread is not None
        assert runner._thread.daemon
    finally:
        runner.stop()
    runner.stop()


def test_loop_thread_guard_timeout_cancels() -> None:
    """A coroutine that outlives the guard is cancelled and ERR_TIMEOUT_TOTAL is raised."""
    runner = LoopThread()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(TimeoutError) as info:
            runner.run(forever(), timeout=0.1)
        assert info.value.code is ErrorCode.TIMEOUT_TOTAL
        assert cancelled.wait(5)
    finally:
        runner.stop()


def test_loop_thread_reports_a_dead_loop() -> None:
    """If the loop thread dies mid-call, the waiting caller gets an error instead of hanging."""
    runner = LoopThread()

    async def kill_loop() -> None:
        asyncio.get_running_loop().stop()  # the loop stops; this task never finishes
        await asyncio.Event().wait()

    try:
        with pytest.raises(RuntimeError, match=r"stopped|not running"):
            runner.run(kill_loop())
    finally:
        runner.stop()


def test_loop_thread_refuses_reentry_and_use_after_stop() -> None:
    """run() from the loop thread itself and run() after stop() raise instead of deadlocking."""
    runner = LoopThread()

    async def nested() -> None:
        async def inner() -> int:
            return 1

        runner.run(inner())

    try:
        with pytest.raises(RuntimeError, match="own loop thread"):
            runner.run(nested())
    finally:
        runner.stop()

    async def noop() -> None:
        return None

    with pytest.raises(RuntimeError, match="stopped"):
        runner.run(noop())
