"""A scriptable loopback HTTP server on its own loop thread, for client tests.

Running the server on a separate thread lets async tests, sync tests, and sync calls made from a
thread that already runs a loop all talk to it the same way. Handlers are set per test; every
request is recorded (headers, body, the client's address, which identifies the connection).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pixel_llm_otel._loop_thread import LoopThread

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def completion(text: str = "a red square", **over: Any) -> dict[str, Any]:
    """An OpenAI-shaped chat.completion body."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }
    body.update(over)
    return body


class StubServer:
    """The server. ``on(method, path, handler)`` scripts it; ``seen`` lists what arrived."""

    def __init__(self) -> None:
        self._thread = LoopThread(name="stub-server")
        self._runner: web.AppRunner | None = None
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.seen: list[Seen] = []
        self.port = 0
        self.release: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._thread.run(self._start(), timeout=10)

    def stop(self) -> None:
        self._thread.run(self._stop(), timeout=10)
        self._thread.stop()

    def reset(self) -> None:
        self.handlers.clear()
        self.seen.clear()
        self._thread.run(self._new_release(), timeout=10)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.handlers[(method, path)] = handler

    def json_reply(
        self,
        body: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        path: str = "/v1/chat/completions",
        method: str = "POST",
    ) -> None:
        """Answer ``method path`` with ``body`` as JSON (``str`` bodies are sent raw)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(
                text=text, status=status, headers=headers, content_type="application/json"
            )

        self.on(method, path, handler)

    def connections(self) -> int:
        """How many distinct TCP connections carried the requests seen so far."""
        return len({s.peer for s in self.seen})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        await self._new_release()

    async def _stop(self) -> None:
        if self.release is not None:
            self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _new_release(self) -> None:
        if self.release is not None:
            self.release.set()  # frees handlers of the previous test that still wait
        self.release = asyncio.Event()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(request.method, request.path, dict(request.headers), body, tuple(peer or ()))
        )
        handler = self.handlers.get((request.method, request.path))
        if handler is None:
            return web.json_response(
                {"error": {"message": f"no route {request.path}", "type": "invalid_request"}},
                status=404,
            )
        return await handler(request)
