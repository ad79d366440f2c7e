"""Secret scrubbing of server-supplied text: the API key, ``Bearer`` tokens, URL passwords.

Gateways and proxies echo what they received (the ``Authorization`` header, the raw key, a URL with
``user:password@``) into error bodies, status reasons and headers. The client passes every piece
of server text through one :class:`Scrubber` where it enters the library
(:mod:`pixel_llm_otel.client._inbound`), so no exception, log record, span event or metric built
from it can carry a secret, whatever the key's shape (``abc123``, a JWT, ``a+b/c=``).

What is replaced by :data:`MARKER`:

- the configured API key's exact value, and its JSON-escaped (``\\/``) and percent-encoded forms;
- the token after ``Bearer`` (any case), whatever it is;
- the password of a URL's user info (``scheme://user:password@host``).
"""

from __future__ import annotations

import contextlib
import json
import re
from urllib.parse import quote

__all__ = ["MARKER", "Scrubber"]

#: What a secret is replaced with (the same marker the log redaction uses).
MARKER = "[REDACTED]"

_BEARER = r"(?P<bearer>(?i:\bbearer)\s+)[^\s\"'<>,;\\]+"
_URL_PASSWORD = r"(?P<userinfo>://[^/\s:@\"'<>]*:)[^/\s@\"'<>]+@"
#: Attributes of library exceptions that hold server text (aiohttp's ``message``, ``line``...).
_TEXT_ATTRIBUTES = ("message", "msg", "reason", "line", "hdr", "doc", "strerror")


def _key_forms(api_key: str | None) -> list[str]:
    """The key as sent and as an echo may spell it, longest first."""
    if not api_key:
        return []
    forms = {
        api_key,
        api_key.replace("/", "\\/"),
        json.dumps(api_key)[1:-1],
        quote(api_key, safe=""),
    }
    return sorted(forms, key=len, reverse=True)


class Scrubber:
    """Replaces secrets in text, bytes and exception chains with :data:`MARKER`.

    Built once per client from its API key; thread-safe (compiled patterns only).
    """

    __slots__ = ("_bytes", "_keys", "_keys_bytes", "_text")

    def __init__(self, api_key: str | None = None) -> None:
        forms = _key_forms(api_key)
        keys = "|".join(re.escape(k) for k in forms)
        alternatives = ([f"(?P<key>{keys})"] if keys else []) + [_BEARER, _URL_PASSWORD]
        pattern = "|".join(alternatives)
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode("utf-8"))
        self._keys = tuple(forms)
        self._keys_bytes = tuple(k.encode("utf-8") for k in forms)

    def text(self, value: str) -> str:
        """``value`` with every secret replaced."""
        if "://" not in value and "bearer" not in value.lower():
            for key in self._keys:
                if key in value:
                    break
            else:
                return value  # the common case: a few substring scans, no substitution pass
        return self._text.sub(_replace_text, value)

    def bytes(self, value: bytes) -> bytes:
        """``value`` (raw body bytes) with every secret replaced."""
        if b"://" not in value and b"bearer" not in value.lower():
            for key in self._keys_bytes:
                if key in value:
                    break
            else:
                return value
        return self._bytes.sub(_replace_bytes, value)

    def exception(self, exc: BaseException) -> None:
        """Scrub, in place, the messages of ``exc`` and every exception chained to it.

        Library exceptions (aiohttp's parser errors) quote the raw status line or header they
        choked on; their ``str()`` ends up in tracebacks and span events, so they are cleaned
        before anything sees them.
        """
        seen: set[int] = set()
        pending: list[BaseException | None] = [exc]
        while pending:
            current = pending.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            with contextlib.suppress(AttributeError, TypeError):
                current.args = tuple(self._any(arg) for arg in current.args)
            for name in _TEXT_ATTRIBUTES:
                value = getattr(current, name, None)
                if isinstance(value, (str, bytes)):
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(current, name, self._any(value))
            pending.extend((current.__cause__, current.__context__))

    def _any(self, value: object) -> object:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        return value


def _replace_text(match: re.Match[str]) -> str:
    if match.group("bearer") is not None:
        return match.group("bearer") + MARKER
    if match.group("userinfo") is not None:
        return match.group("userinfo") + MARKER + "@"
    return MARKER


_MARKER_BYTES = MARKER.encode("ascii")


def _replace_bytes(match: re.Match[bytes]) -> bytes:
    if match.group("bearer") is not None:
        return match.group("bearer") + _MARKER_BYTES
    if match.group("userinfo") is not None:
        return match.group("userinfo") + _MARKER_BYTES + b"@"
    return _MARKER_BYTES
