"""Where server-supplied data enters the library: bounded reads, secret scrubbing, typed failures.

Every byte the client takes from a server passes through here:

- bodies are read with a limit on their *decompressed* size (``max_response_bytes``), chunk by
  chunk, so neither a huge body nor a compression bomb costs more than the limit in memory;
- every body, error text, status reason and library error message is scrubbed of secrets
  (:class:`~pixel_llm_otel.client._secrets.Scrubber`) before any exception is built from it;
- every failure while reading, decoding or validating becomes a typed
  :class:`~pixel_llm_otel.errors.PixelLMError` (never a raw ``RecursionError`` or ``ValueError``);
- each attempt's timeouts are capped by what is left of the call's deadline
  (:func:`~pixel_llm_otel.resilience.remaining_budget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import (
    DEFAULT_CLASSIFIER,
    APIError,
    ErrorCode,
    PixelLMError,
    TimeoutError,
    parse_retry_after,
    status_code_to_error_code,
)
from ..resilience._budget import remaining_budget
from ._json import loads
from ._secrets import Scrubber
from ._types import ResponseShapeError, extract_error_message

__all__ = [
    "LimitedLines",
    "Translate",
    "attempt_timeout",
    "decode",
    "raise_status",
    "read_body",
    "scrub_transport_error",
    "scrubbing_trace_config",
]

T = TypeVar("T")

#: Longest status reason / redirect location quoted in an error message.
_MAX_QUOTED = 200
_EXCERPT_BYTES = 1024


def attempt_timeout(base: aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """``base`` with every timeout capped by the time left of the call's deadline.

    Raises ``TimeoutError`` (``ERR_TIMEOUT_TOTAL``) when nothing is left: the attempt is not
    started at all. Capped timeouts are exact (aiohttp's rounding up to whole seconds is off);
    a read timeout no shorter than the total is dropped (the total one always fires first).
    """
    left = remaining_budget()
    if left is None:
        return base
    if left <= 0:
        raise TimeoutError(
            "the call's deadline left no time for another attempt", code=ErrorCode.TIMEOUT_TOTAL
        )
    total = left if base.total is None else min(base.total, left)
    sock_read = left if base.sock_read is None else min(base.sock_read, left)
    return aiohttp.ClientTimeout(
        total=total,
        sock_connect=left if base.sock_connect is None else min(base.sock_connect, left),
        # No read timer when it could not fire first: the total one, armed before any read,
        # ends the attempt no later (aiohttp would re-arm a read timer on every chunk).
        sock_read=None if sock_read >= total else sock_read,
        ceil_threshold=math.inf,
    )


def scrubbing_trace_config(scrub: Scrubber) -> aiohttp.TraceConfig:
    """An aiohttp trace config that scrubs a failed request's exception before anyone sees it.

    The session's own trace configs run before those an HTTP instrumentation appends, so an
    HTTP client span records the scrubbed message (aiohttp's parser errors quote raw lines).
    """

    async def on_request_exception(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        scrub_transport_error(params.exception, scrub)

    config = aiohttp.TraceConfig()
    config.on_request_exception.append(on_request_exception)
    return config


def scrub_transport_error(exc: BaseException, scrub: Scrubber) -> None:
    """Scrub an aiohttp exception chain in place: messages, and the request headers that
    ``ClientResponseError.request_info`` keeps (its ``repr`` shows our ``Authorization``)."""
    scrub.exception(exc)
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return
        info = getattr(current, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo):
            headers = CIMultiDict((k, scrub.text(v)) for k, v in info.headers.items())
            with contextlib.suppress(AttributeError, TypeError):
                current.request_info = aiohttp.RequestInfo(  # type: ignore[attr-defined]
                    info.url, info.method, CIMultiDictProxy(headers), info.real_url
                )
        current = current.__cause__ or current.__context__


def _too_large(limit: int, ctx: Mapping[str, Any], status: int | None) -> APIError:
    return APIError(
        f"response body from {ctx['url_path']} exceeds max_response_bytes={limit} "
        "(counted after decompression); reading stopped",
        code=ErrorCode.RESPONSE_TOO_LARGE,
        status=None if status == 200 else status,
        context={**ctx, "max_response_bytes": limit},
    )


async def read_body(
    resp: aiohttp.ClientResponse, limit: int, ctx: Mapping[str, Any], scrub: Scrubber
) -> bytes:
    """The whole (decompressed) body, scrubbed; ``ERR_RESPONSE_TOO_LARGE`` past ``limit`` bytes.

    Memory stays within about ``limit`` plus one chunk: the body is counted as it arrives and
    the connection is dropped as soon as the limit is crossed.
    """
    length = resp.content_length
    if length is not None and "Content-Encoding" not in resp.headers:
        if length > limit:
            resp.close()
            raise _too_large(limit, ctx, resp.status)
        return scrub.bytes(await resp.read())  # aiohttp reads exactly Content-Length bytes
    chunks: list[bytes] = []
    size = 0
    content = resp.content
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            chunks.clear()
            resp.close()
            raise _too_large(limit, ctx, resp.status)
        chunks.append(chunk)
    return scrub.bytes(b"".join(chunks))


#: Longest line of an event stream (aiohttp's own ``readline`` limit: ``2 * read_bufsize``).
_MAX_LINE = 2**17


class LimitedLines:
    """The lines of a streamed body, scrubbed, a block at a time, until ``limit`` bytes in all.

    :meth:`read` returns every complete line that has arrived as one block (each line ending in
    ``\n``; at the end of the body a last line without one), ``b""`` at the end: one await and
    one scrub per network read instead of per line. The limit is exact on the decompressed
    bytes: lines that end within ``limit`` bytes are returned, then ``ERR_RESPONSE_TOO_LARGE``.
    Scrubbing whole lines together replaces every secret that scrubbing each line would. A line
    longer than ``2**17`` bytes raises ``ValueError`` (as aiohttp's ``readline`` does).
    """

    __slots__ = ("_content", "_ctx", "_limit", "_over", "_partial", "_resp", "_scrub", "_size")

    def __init__(
        self, resp: aiohttp.ClientResponse, limit: int, ctx: Mapping[str, Any], scrub: Scrubber
    ) -> None:
        self._resp = resp
        self._content = resp.content
        self._limit = limit
        self._ctx = ctx
        self._scrub = scrub
        self._size = 0
        self._over = False
        self._partial = b""

    async def read(self) -> bytes:
        """The next block of whole lines, scrubbed; ``b""`` once the body has ended."""
        while True:
            if self._over:
                self._resp.close()
                raise _too_large(self._limit, self._ctx, self._resp.status)
            block = await self._content.readany()
            if not block:
                rest, self._partial = self._partial, b""
                return self._scrub.bytes(rest)
            self._size += len(block)
            if self._size > self._limit:  # keep only the bytes within the limit
                block = block[: len(block) - (self._size - self._limit)]
                self._over = True
                if not block:
                    continue
            if self._partial:
                block = self._partial + block
            cut = block.rfind(b"\n") + 1
            if cut == len(block):
                self._partial = b""
                return self._scrub.bytes(block)
            self._partial = block[cut:]
            if len(self._partial) > _MAX_LINE:
                raise ValueError("Chunk too big")
            if cut:
                return self._scrub.bytes(block[:cut])


async def raise_status(
    resp: aiohttp.ClientResponse, ctx: Mapping[str, Any], max_bytes: int, scrub: Scrubber
) -> NoReturn:
    """Raise the ``APIError`` of a non-2xx response (redirects are never followed)."""
    raw = await resp.content.read(max_bytes)
    text = scrub.text(raw.decode("utf-8", errors="replace"))
    server_message = extract_error_message(text)
    if server_message is not None:
        server_message = scrub.text(server_message)[: 4 * _MAX_QUOTED]
    reason = scrub.text(resp.reason or "")[:_MAX_QUOTED]
    status = resp.status
    if status < 400:
        location = scrub.text(resp.headers.get("Location", ""))[:_MAX_QUOTED]
        raise APIError(
            f"HTTP {status} from {ctx['method']} {ctx['url_path']}: redirect to "
            f"{location or 'nowhere'!r} not followed (an OpenAI-compatible API does not redirect)",
            status=status,
            body=text,
            code=ErrorCode.RESPONSE_INVALID,
            retryable=False,
            context=ctx,
        )
    detail = server_message or reason or "no detail"
    raise APIError(
        f"HTTP {status} from {ctx['method']} {ctx['url_path']}: {detail}",
        status=status,
        body=text,
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
        code=status_code_to_error_code(status),
        context={**ctx, "server_message": server_message} if server_message else ctx,
    )


class Translate:
    """Turns exceptions raised in its block into typed, scrubbed ``PixelLMError``s."""

    __slots__ = ("_ctx", "_scrub")

    def __init__(self, ctx: Mapping[str, Any], scrub: Scrubber) -> None:
        self._ctx = ctx
        self._scrub = scrub

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, PixelLMError) or not isinstance(exc, Exception):
            return  # ours already, or cancellation / GeneratorExit / KeyboardInterrupt
        scrub_transport_error(exc, self._scrub)  # aiohttp quotes raw status lines and headers
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
            raise DEFAULT_CLASSIFIER.to_error(exc, context=self._ctx) from exc
        code = ErrorCode.RESPONSE_MALFORMED
        if isinstance(exc, (ValueError, RecursionError, MemoryError)):
            what = "unreadable response stream"  # undecodable or oversized SSE line
        else:
            what = "unexpected failure while reading the response"
            code = ErrorCode.RESPONSE_INVALID
        raise APIError(
            f"{what} ({type(exc).__name__}: {exc})",
            code=code,
            context=self._ctx,
            cause=exc,
        ) from exc


def decode(raw: bytes, parse: Callable[[object], T], ctx: Mapping[str, Any]) -> T:
    """Parse a JSON body (already scrubbed) with ``parse``; every failure is typed.

    Not JSON (bad syntax, invalid UTF-8, nesting too deep for the parser) is
    ``ERR_RESPONSE_MALFORMED``; JSON of the wrong shape or types is ``ERR_RESPONSE_INVALID``.
    """
    try:
        data = loads(raw)  # refuses deep nesting before the parser recurses into it
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, TooDeep
        raise APIError(
            f"response body from {ctx['url_path']} is not valid JSON ({type(exc).__name__}: "
            f"{_short(exc)})",
            code=ErrorCode.RESPONSE_MALFORMED,
            body=raw[:_EXCERPT_BYTES].decode("utf-8", errors="replace"),
            context=ctx,
            cause=exc,
        ) from exc
    try:
        return parse(data)
    except ResponseShapeError as exc:
        raise APIError(
            f"unexpected response from {ctx['url_path']}: {exc}",
            code=ErrorCode.RESPONSE_INVALID,
            body=raw[:_EXCERPT_BYTES].decode("utf-8", errors="replace"),
            context={**ctx, "json_path": exc.path},
            cause=exc,
        ) from exc
    except (ValueError, TypeError, LookupError, RecursionError) as exc:
        raise APIError(
            f"unexpected response from {ctx['url_path']} ({type(exc).__name__})",
            code=ErrorCode.RESPONSE_INVALID,
            body=raw[:_EXCERPT_BYTES].decode("utf-8", errors="replace"),
            context=ctx,
            cause=exc,
        ) from exc


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "..."
