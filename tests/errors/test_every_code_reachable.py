"""Every ERR_* code is produced by a real failure path, and the classifier names it.

Network codes come from aiohttp talking to servers started here on loopback (a closed port, a
server that never answers, one that hangs up mid-body, a full accept backlog, a plain-text server
spoken to in TLS, real HTTP error statuses); DNS uses the OS resolver in numeric-host mode so a
name fails at once without any network. Encoder codes come from real torch failures, validation
codes from :mod:`pixel_llm_otel.validation`, breaker and retry codes from the real primitives.
No test addresses anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.errors import DEFAULT_CLASSIFIER, ErrorCode, PixelLMError
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from pixel_llm_otel.resilience.retry import RetryConfig, RetryPolicy
from pixel_llm_otel.sim import FaultSpec, SimulatorServer
from pixel_llm_otel.validation import (
    sanitize_input,
    validate_config,
    validate_image_tensor,
    validate_tensor,
)

torch = pytest.importorskip("torch")
SHORT = 0.3  # seconds: the timeouts provoked below


@dataclass
class Servers:
    """Loopback endpoints that fail in different ways."""

    tmp: Path
    http: str  # aiohttp.web app: /status/{n}, /html, /badjson, /loop
    closed_port: int
    silent: str  # accepts and never answers
    midbody: str  # promises 100 bytes, sends 5, hangs up
    plain_tcp: str  # speaks plain text to a TLS ClientHello
    backlog: str  # accept queue full: SYNs are dropped, connect hangs


async def _raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await reader.read()  # until the client gives up and closes
    writer.close()


async def _midbody(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'
    )
    await writer.drain()
    writer.close()


async def _plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(16)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    with contextlib.suppress(Exception):
        await writer.drain()
    writer.close()


def _app() -> web.Application:
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["n"])
        headers = {"Retry-After": "2"} if code == 429 else {}
        return web.json_response(
            {"error": {"message": f"status {code}"}}, status=code, headers=headers
        )

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>LM Studio is not here</html>", content_type="text/html")

    async def badjson(request: web.Request) -> web.Response:
        return web.Response(text='{"choices": [', content_type="application/json")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def no_choices(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": "c1", "object": "chat.completion", "model": "m", "choices": []}
        )

    app = web.Application()
    app.router.add_get("/status/{n}", status)
    app.router.add_get("/html", html)
    app.router.add_get("/badjson", badjson)
    app.router.add_get("/loop", loop)
    app.router.add_post("/v1/chat/completions", no_choices)
    return app


@contextlib.contextmanager
def _full_backlog() -> Iterator[int]:
    """A listening socket whose accept queue is full, so new connection attempts hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    """Start every failing endpoint for one test and stop them afterwards."""
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = runner.addresses[0][1]
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    raw = [await _raw_server(h) for h in (_silent, _midbody, _plain)]
    ports = [s.sockets[0].getsockname()[1] for s in raw]
    with _full_backlog() as backlog_port:
        yield Servers(
            tmp=tmp_path,
            http=f"http://127.0.0.1:{http_port}",
            closed_port=closed_port,
            silent=f"http://127.0.0.1:{ports[0]}/",
            midbody=f"http://127.0.0.1:{ports[1]}/",
            plain_tcp=f"https://127.0.0.1:{ports[2]}/",
            backlog=f"http://127.0.0.1:{backlog_port}/",
        )
    for s in raw:
        s.close()
        await s.wait_closed()
    await runner.cleanup()


class NumericOnlyResolver(AbstractResolver):
    """Resolves through the OS's getaddrinfo with AI_NUMERICHOST: names fail at once, offline,
    with the same socket.gaierror the real resolver raises for an unknown host."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_NUMERICHOST
        )
        return [
            ResolveResult(
                hostname=host,
                host=str(i[4][0]),
                port=int(i[4][1]),
                family=i[0],
                proto=i[2],
                flags=socket.AI_NUMERICHOST,
            )
            for i in infos
        ]

    async def close(self) -> None:
        return None


async def _get(
    url: str,
    *,
    timeout: aiohttp.ClientTimeout | None = None,
    resolver: AbstractResolver | None = None,
    read_json: bool = False,
) -> BaseException:
    """GET ``url`` the way the LLM client does and return the exception it raised."""
    connector = aiohttp.TCPConnector(resolver=resolver) if resolver else None
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=timeout or aiohttp.ClientTimeout(total=10)
            ) as session,
            session.get(url, raise_for_status=True) as resp,
        ):
            if read_json:
                await resp.json()
            else:
                await resp.read()
    except Exception as exc:
        return exc
    raise AssertionError(f"GET {url} unexpectedly succeeded")


def _raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected a failure")


def _refused(port: int) -> None:
    socket.create_connection(("127.0.0.1", port), timeout=5).close()


# --- one real failure per code ------------------------------------------------------------
Producer = Callable[[Servers], Awaitable[BaseException]]


async def _status(s: Servers, n: int) -> BaseException:
    return await _get(f"{s.http}/status/{n}")


def _cuda_device() -> str:
    """A CUDA device this machine lacks: any on a CPU-only box, the next index on a GPU box."""
    return f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}"


async def _checkpoint(s: Servers) -> BaseException:
    path = s.tmp / "encoder.pt"
    path.write_bytes(b"definitely not a torch checkpoint\x00\x01\x02")
    return _raised(lambda: torch.load(path))


async def _breaker_open(s: Servers) -> BaseException:
    breaker = CircuitBreaker("reachability", CircuitBreakerConfig(failure_threshold=1))
    first = _raised(lambda: breaker.call(_refused, s.closed_port))
    assert DEFAULT_CLASSIFIER.classify(first).code is ErrorCode.CONNECTION_REFUSED
    return _raised(lambda: breaker.call(_refused, s.closed_port))


async def _retry_exhausted(s: Servers) -> BaseException:
    policy = RetryPolicy(RetryConfig(max_attempts=2, jitter=False), sleep=lambda _: None)
    return _raised(lambda: policy.call(_refused, s.closed_port))


async def _no_choices(s: Servers) -> BaseException:
    """The real LLM client given a 200 chat completion with no choices."""
    async with LMStudioClient(f"{s.http}/v1") as client:
        try:
            await client.chat([{"role": "user", "content": "describe"}], model="m")
        except Exception as exc:
            return exc
    raise AssertionError("a completion without choices was accepted")


async def _stream_interrupted(s: Servers) -> BaseException:
    """A simulator stream reset after two words: the client raises StreamInterrupted."""
    paced = FaultSpec(stream_chunk_delay=0.02)  # the words are read before the reset
    async with SimulatorServer(scenario=paced) as sim, LMStudioClient(sim.base_url) as client:
        sim.script([{"kind": "stream_reset", "after": 3}])
        messages = [{"role": "user", "content": "x"}]
        try:
            async for _ in client.stream_chat(messages, model="m"):
                pass
        except PixelLMError as exc:
            return exc
    raise AssertionError("the stream did not fail")


async def _closed_client(s: Servers) -> BaseException:
    """The real LLM client used after close()."""
    client = LMStudioClient(f"{s.http}/v1")
    await client.close()
    try:
        await client.list_models()
    except Exception as exc:
        return exc
    raise AssertionError("a closed client accepted a call")


async def _too_large(s: Servers) -> BaseException:
    """The real LLM client given a 200 body larger than its max_response_bytes."""
    async with LMStudioClient(f"{s.http}/v1", max_response_bytes=16) as client:
        try:
            await client.chat([{"role": "user", "content": "describe"}], model="m")
        except Exception as exc:
            return exc
    raise AssertionError("a body past max_response_bytes was accepted")


async def _pass(value: BaseException) -> BaseException:
    return value


CASES: dict[ErrorCode, Producer] = {
    ErrorCode.CONNECTION_REFUSED: lambda s: _get(f"http://127.0.0.1:{s.closed_port}/"),
    ErrorCode.CONNECTION_DNS: lambda s: _get(
        "http://lm-studio.invalid:1234/v1", resolver=NumericOnlyResolver()
    ),
    ErrorCode.CONNECTION_RESET: lambda s: _get(s.midbody),
    ErrorCode.CONNECTION_SSL: lambda s: _get(s.plain_tcp),
    ErrorCode.TIMEOUT_CONNECT: lambda s: _get(
        s.backlog, timeout=aiohttp.ClientTimeout(sock_connect=SHORT)
    ),
    ErrorCode.TIMEOUT_READ: lambda s: _get(
        s.silent, timeout=aiohttp.ClientTimeout(sock_read=SHORT)
    ),
    ErrorCode.TIMEOUT_TOTAL: lambda s: _get(s.silent, timeout=aiohttp.ClientTimeout(total=SHORT)),
    ErrorCode.HTTP_BAD_REQUEST: lambda s: _status(s, 400),
    ErrorCode.HTTP_NOT_FOUND: lambda s: _get(f"{s.http}/v1/no-such-endpoint"),
    ErrorCode.HTTP_CLIENT_ERROR: lambda s: _status(s, 422),
    ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR: lambda s: _status(s, 409),
    ErrorCode.RATE_LIMITED: lambda s: _status(s, 429),
    ErrorCode.HTTP_SERVER_ERROR: lambda s: _status(s, 500),
    ErrorCode.HTTP_UNAVAILABLE: lambda s: _status(s, 503),
    ErrorCode.API_KEY_INVALID: lambda s: _status(s, 401),
    ErrorCode.RESPONSE_MALFORMED: lambda s: _get(f"{s.http}/badjson", read_json=True),
    ErrorCode.RESPONSE_INVALID: _no_choices,
    ErrorCode.STREAM_INTERRUPTED: _stream_interrupted,
    ErrorCode.RESPONSE_TOO_LARGE: _too_large,
    ErrorCode.VALIDATION_TYPE: lambda s: _pass(_raised(lambda: validate_tensor([[0.5]]))),
    ErrorCode.VALIDATION_SHAPE: lambda s: _pass(
        _raised(lambda: validate_image_tensor(torch.rand(1, 224, 224)))
    ),
    ErrorCode.VALIDATION_DTYPE: lambda s: _pass(
        _raised(lambda: validate_image_tensor(torch.zeros(3, 8, 8, dtype=torch.uint8)))
    ),
    ErrorCode.VALIDATION_RANGE: lambda s: _pass(
        _raised(lambda: validate_image_tensor(torch.full((3, 8, 8), 255.0)))
    ),
    ErrorCode.VALIDATION_NONFINITE: lambda s: _pass(
        _raised(lambda: validate_image_tensor(torch.full((3, 8, 8), float("nan"))))
    ),
    ErrorCode.VALIDATION_DEVICE: lambda s: _pass(
        _raised(lambda: validate_tensor(torch.zeros(2), device="cuda"))
    ),
    ErrorCode.VALIDATION_PROMPT: lambda s: _pass(_raised(lambda: sanitize_input("a\x00b"))),
    ErrorCode.VALIDATION_CONFIG: lambda s: _pass(
        _raised(lambda: validate_config(RetryConfig, {"max_attempts": 0}))
    ),
    ErrorCode.ENCODER_OOM: lambda s: _pass(_raised(lambda: torch.empty(2**60, dtype=torch.uint8))),
    ErrorCode.ENCODER_RUNTIME: lambda s: _pass(
        _raised(lambda: torch.nn.Linear(4, 2)(torch.ones(1, 3)))
    ),
    ErrorCode.ENCODER_CHECKPOINT: _checkpoint,
    ErrorCode.ENCODER_DEVICE: lambda s: _pass(
        _raised(lambda: torch.zeros(1, device=_cuda_device()))
    ),
    ErrorCode.CIRCUIT_OPEN: _breaker_open,
    ErrorCode.RETRY_EXHAUSTED: _retry_exhausted,
    ErrorCode.CLIENT_CLOSED: _closed_client,
    ErrorCode.UNKNOWN: lambda s: _pass(_raised(lambda: dict[str, str]()["choices"])),
}


def test_the_table_covers_every_code() -> None:
    """Each member of ErrorCode has a real failure in CASES (a new code needs a new case)."""
    assert set(CASES) == set(ErrorCode)


@pytest.mark.parametrize("code", list(CASES), ids=[c.value for c in CASES])
async def test_code_is_produced_by_a_real_failure(code: ErrorCode, servers: Servers) -> None:
    """The real failure classifies to the code and translates to an error carrying it."""
    exc = await asyncio.wait_for(CASES[code](servers), timeout=10)
    result = DEFAULT_CLASSIFIER.classify(exc)
    assert result.code is code, f"{type(exc).__name__}: {exc}"
    translated = DEFAULT_CLASSIFIER.to_error(exc)
    assert isinstance(translated, PixelLMError)
    assert translated.code is code
    assert translated.retryable is result.retryable


async def test_rate_limit_carries_the_servers_retry_after(servers: Servers) -> None:
    """A real 429 with Retry-After: 2 yields retry_after == 2.0 on the translated error."""
    exc = await _status(servers, 429)
    err: Any = DEFAULT_CLASSIFIER.to_error(exc)
    assert err.retry_after == 2.0
    assert err.status == 429


async def test_endless_redirects_are_an_invalid_response(servers: Servers) -> None:
    """A redirect loop (aiohttp's TooManyRedirects) is ERR_RESPONSE_INVALID."""
    exc = await _get(f"{servers.http}/loop")
    assert DEFAULT_CLASSIFIER.classify(exc).code is ErrorCode.RESPONSE_INVALID


async def test_non_json_page_is_malformed(servers: Servers) -> None:
    """An HTML page where JSON was expected (a proxy, a wrong URL) is ERR_RESPONSE_MALFORMED."""
    exc = await _get(f"{servers.http}/html", read_json=True)
    assert DEFAULT_CLASSIFIER.classify(exc).code is ErrorCode.RESPONSE_MALFORMED


async def test_missing_checkpoint_file_is_a_checkpoint_error(servers: Servers) -> None:
    """torch.load of a path that does not exist is ERR_ENCODER_CHECKPOINT, not a bare OSError."""
    exc = _raised(lambda: torch.load(servers.tmp / "missing.pt"))
    assert DEFAULT_CLASSIFIER.classify(exc).code is ErrorCode.ENCODER_CHECKPOINT


async def test_abrupt_close_before_response_is_a_reset(servers: Servers) -> None:
    """A server that hangs up right after the request (no status line) is a connection reset."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await _raw_server(hang_up)
    port = server.sockets[0].getsockname()[1]
    try:
        exc = await _get(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()
    assert DEFAULT_CLASSIFIER.classify(exc).code is ErrorCode.CONNECTION_RESET
