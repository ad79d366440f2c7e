"""Render the generated tables of ``docs/error-handling-guide.md`` from the code itself.

The guide holds blocks between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->``; a test checks each block equals :func:`render` ``(name)``.
Regenerate after changing a code or the classifier::

    python -m pixel_llm_otel.errors._docs docs/error-handling-guide.md
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from .codes import CODE_INFO, ErrorCode
from .exceptions import (
    APIError,
    CircuitBreakerOpen,
    ClientClosedError,
    ConnectionError,
    EncoderError,
    PixelLMError,
    RetryExhausted,
    StreamInterrupted,
    TimeoutError,
    ValidationError,
)

__all__ = ["BLOCKS", "render", "update_file"]

_EXCEPTIONS: tuple[type[PixelLMError], ...] = (
    PixelLMError,
    ConnectionError,
    TimeoutError,
    ValidationError,
    APIError,
    EncoderError,
    CircuitBreakerOpen,
    RetryExhausted,
    StreamInterrupted,
    ClientClosedError,
)

#: How the classifier maps what is raised to a code (kept next to the rendering, checked by a test
#: that classifies a real instance of each row).
CLASSIFIER_ROWS: tuple[tuple[str, ErrorCode], ...] = (
    (
        "`aiohttp.ClientConnectorError` (ECONNREFUSED), `ConnectionRefusedError`",
        ErrorCode.CONNECTION_REFUSED,
    ),
    ("`aiohttp.ClientConnectorDNSError`, `socket.gaierror`", ErrorCode.CONNECTION_DNS),
    (
        "`aiohttp.ServerDisconnectedError`, `ClientPayloadError`, `ClientOSError`, "
        "`ConnectionResetError`, `BrokenPipeError`",
        ErrorCode.CONNECTION_RESET,
    ),
    ("`aiohttp.ClientSSLError`, `ssl.SSLError`", ErrorCode.CONNECTION_SSL),
    (
        "`aiohttp.ConnectionTimeoutError` (`sock_connect`/`connect`), `OSError(ETIMEDOUT)`",
        ErrorCode.TIMEOUT_CONNECT,
    ),
    ("`aiohttp.SocketTimeoutError` / `ServerTimeoutError` (`sock_read`)", ErrorCode.TIMEOUT_READ),
    (
        "`asyncio.TimeoutError` / `TimeoutError` (aiohttp `total`, `asyncio.wait_for`)",
        ErrorCode.TIMEOUT_TOTAL,
    ),
    ("HTTP 400", ErrorCode.HTTP_BAD_REQUEST),
    ("HTTP 401, 403", ErrorCode.API_KEY_INVALID),
    ("HTTP 404", ErrorCode.HTTP_NOT_FOUND),
    ("HTTP 408, 409, 425", ErrorCode.HTTP_TRANSIENT_CLIENT_ERROR),
    ("HTTP 429 (`Retry-After` parsed: seconds or HTTP-date)", ErrorCode.RATE_LIMITED),
    ("other HTTP 4xx", ErrorCode.HTTP_CLIENT_ERROR),
    ("HTTP 502, 503, 504", ErrorCode.HTTP_UNAVAILABLE),
    ("HTTP 500 and other 5xx", ErrorCode.HTTP_SERVER_ERROR),
    (
        "`json.JSONDecodeError`, `aiohttp.ContentTypeError`; aiohttp's HTTP parser rejecting the "
        "reply (a non-HTTP status line, bad headers, broken chunked or gzip framing); a body "
        "that is not UTF-8 or nests deeper than the JSON parser goes (raised by the client)",
        ErrorCode.RESPONSE_MALFORMED,
    ),
    (
        "`aiohttp.TooManyRedirects`; a redirect (never followed), a 200 body without choices or "
        "with wrong JSON types (raised by the client)",
        ErrorCode.RESPONSE_INVALID,
    ),
    (
        "a body past `max_response_bytes` after decompression (raised by the client)",
        ErrorCode.RESPONSE_TOO_LARGE,
    ),
    (
        '`torch.cuda.OutOfMemoryError`, `MemoryError`, torch "out of memory" / '
        '"can\'t allocate memory"',
        ErrorCode.ENCODER_OOM,
    ),
    (
        "an error raised inside `torch.load` (missing, truncated or garbage checkpoint), "
        '"Error(s) in loading state_dict"',
        ErrorCode.ENCODER_CHECKPOINT,
    ),
    (
        'torch: "no NVIDIA driver", "not compiled with CUDA", "invalid device ordinal"',
        ErrorCode.ENCODER_DEVICE,
    ),
    ("any other error raised by torch code", ErrorCode.ENCODER_RUNTIME),
    ("anything else (e.g. `KeyError`, an unrelated `RuntimeError`)", ErrorCode.UNKNOWN),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _codes() -> str:
    lines = [
        "| code | meaning | category | severity | retryable | trips breaker | what to do |",
        "|---|---|---|---|---|---|---|",
    ]
    for code in ErrorCode:
        i = CODE_INFO[code]
        lines.append(
            f"| `{code.value}` | {_cell(i.message)} | {i.category.value} | {i.severity.value} "
            f"| {_yes(i.retryable)} | {_yes(i.trips_breaker)} | {_cell(i.suggestion)} |"
        )
    return "\n".join(lines)


def _exceptions() -> str:
    lines = ["| exception | also a | default code | raised when |", "|---|---|---|---|"]
    for cls in _EXCEPTIONS:
        extra = [b.__name__ for b in cls.__bases__ if b is not PixelLMError and b is not Exception]
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(
            f"| `{cls.__name__}` | {', '.join(f'`{e}`' for e in extra) or '-'} "
            f"| `{cls.default_code.value}` | {_cell(doc)} |"
        )
    return "\n".join(lines)


def _classifier() -> str:
    lines = ["| raised | code | retryable |", "|---|---|---|"]
    for raised, code in CLASSIFIER_ROWS:
        lines.append(f"| {raised} | `{code.value}` | {_yes(code.info.retryable)} |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "codes": _codes,
    "exceptions": _exceptions,
    "classifier": _classifier,
}


def render(name: str) -> str:
    """The current text of generated block ``name``."""
    return BLOCKS[name]()


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- BEGIN GENERATED: {name} -->\n)(.*?)(\n<!-- END GENERATED: {name} -->)", re.S
    )


def update_file(path: Path) -> bool:
    """Rewrite every generated block in ``path``; True if the file changed."""
    text = path.read_text(encoding="utf-8")
    new = text
    for name in BLOCKS:
        body = render(name)

        def _replace(m: re.Match[str], body: str = body) -> str:
            return m.group(1) + body + m.group(3)

        new = _pattern(name).sub(_replace, new)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def extract(text: str, name: str) -> str | None:
    """The body of generated block ``name`` in ``text`` (``None`` if absent)."""
    match = _pattern(name).search(text)
    return match.group(2) if match else None


if __name__ == "__main__":  # pragma: no cover - developer tool
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/error-handling-guide.md")
    changed = update_file(target)
    sys.stderr.write(f"{target}: {'updated' if changed else 'up to date'}\n")
