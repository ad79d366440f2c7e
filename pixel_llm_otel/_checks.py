"""The one set of setting checks every configuration section uses.

Each check returns the (normalised) value or raises :class:`~pixel_llm_otel.errors.ValidationError`
(``ERR_VALIDATION_CONFIG`` unless told otherwise) naming the field, the value (secrets masked) and
what was expected. The client, encoder, resilience and pipeline sections, and the per-call
argument checks, all call these, so one setting is judged the same way wherever it is given.

Imports nothing but :mod:`pixel_llm_otel.errors` (the resilience package uses it too, and must not
import OpenTelemetry).
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta
from urllib.parse import urlsplit

from .errors import ErrorCode, ValidationError

__all__ = [
    "MAX_TOKENS_LIMIT",
    "check_bool",
    "check_device",
    "check_int",
    "check_max_tokens",
    "check_number",
    "check_rate",
    "check_secret",
    "check_temperature",
    "check_text",
    "check_url",
    "config_error",
    "mask_secret",
    "to_seconds",
]

_CONFIG = ErrorCode.VALIDATION_CONFIG
#: The largest ``max_tokens`` sent (a signed 32-bit int: what servers parse it into).
MAX_TOKENS_LIMIT = 2**31 - 1
_URL_PORTS = {"http": 80, "https": 443}
_IPV6_NETLOC = re.compile(r"\[[0-9A-Za-z:.%]+\](:[0-9]+)?")
_DEVICE_WORDS = frozenset({"auto", "cpu", "cuda", "mps"})


def config_error(
    field: str, value: object, expected: str, *, code: ErrorCode = _CONFIG
) -> ValidationError:
    """The :class:`ValidationError` for a bad setting."""
    return ValidationError(field=field, value=value, expected=expected, code=code)


def mask_secret(value: object) -> str:
    """What an error may show of a secret: its type and length, never a character of it."""
    if isinstance(value, str):
        return f"<secret str of {len(value)} chars>"
    return f"<secret {type(value).__name__}>"


def check_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise config_error(field, value, "a bool")
    return value


def check_int(
    field: str,
    value: object,
    *,
    minimum: int,
    maximum: int | None = None,
    code: ErrorCode = _CONFIG,
) -> int:
    """``value`` as a plain int if it is an int (not a bool) in ``[minimum, maximum]``.

    An int subclass is read through ``int.__index__``, whatever it overrides.
    """
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = int.__index__(value)
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise config_error(field, value, f"an int {bound}", code=code)
    return number


def check_number(
    field: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
    code: ErrorCode = _CONFIG,
) -> float:
    """``value`` as a plain float: a finite int or float (not a bool) within the bounds.

    Subclasses are read through ``int.__index__`` / ``float.__float__``, whatever they override.
    """
    number = _plain_float(value)
    ok = number is not None and math.isfinite(number)
    if number is not None and minimum is not None:
        ok = ok and (number > minimum if exclusive_min else number >= minimum)
    if number is not None and maximum is not None:
        ok = ok and number <= maximum
    if not ok or number is None:
        low = "" if minimum is None else (f"> {minimum:g}" if exclusive_min else f">= {minimum:g}")
        high = "" if maximum is None else f"<= {maximum:g}"
        bound = " and ".join(b for b in (low, high) if b)
        raise config_error(
            field, value, f"a finite number{' ' + bound if bound else ''}", code=code
        )
    return number


def _plain_float(value: object) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return float(int.__index__(value) if isinstance(value, int) else float.__float__(value))
    except OverflowError:  # an int too large for a float (10**400)
        return None


def check_rate(field: str, value: object) -> float:
    """``value`` as a float in (0, 1]."""
    return check_number(field, value, minimum=0.0, maximum=1.0, exclusive_min=True)


def to_seconds(field: str, value: object, *, positive: bool = False) -> float:
    """``value`` (seconds as int/float, or a :class:`~datetime.timedelta`) as float seconds.

    Rejects anything that is not a finite number of seconds >= 0 (> 0 with ``positive``).
    """
    expected = "a finite number of seconds or a timedelta, " + ("> 0" if positive else ">= 0")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise config_error(field, value, expected)
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise config_error(field, value, expected)
    return seconds


def check_text(field: str, value: object, *, what: str = "a non-empty str") -> str:
    """A non-empty, printable str without surrounding whitespace only (a name, a label)."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise config_error(field, value, f"{what} (printable, not blank)")
    return value


def check_secret(field: str, value: object) -> str | None:
    """An API key: ``None`` or a non-empty str of visible ASCII (it travels in an HTTP header).

    The value is never echoed: errors show :func:`mask_secret` of it.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise config_error(field, mask_secret(value), "a non-empty str or None")
    if any(not (0x20 < ord(c) < 0x7F) for c in value):
        raise config_error(
            field,
            mask_secret(value),
            "printable ASCII without spaces or control characters (no CR, LF or NUL)",
        )
    return value


def check_url(field: str, value: object) -> str:
    """An ``http(s)://host[:port][/path]`` base URL, a trailing ``/`` dropped.

    Rejected: another scheme, no host, credentials (``user:pass@``: the password is masked in the
    error), a query or fragment, a port outside 1..65535, a broken IPv6 literal, whitespace or
    control characters.
    """
    expected = "an http(s) URL such as http://localhost:1234/v1"
    if not isinstance(value, str) or not value.strip():
        raise config_error(field, value, expected)
    text = value.strip(" ").rstrip("/")
    if not text.isprintable() or any(c.isspace() for c in text):
        raise config_error(field, _mask_url(text), f"{expected} (no spaces or control characters)")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port out of range or not a number
        host = parts.hostname
    except ValueError:
        # Not chained: urllib's message quotes the bad "port", which may be part of a password
        # (user:pa55/word@host splits at the "/").
        raise ValidationError(
            field=field,
            value=_mask_url(text),
            expected=f"{expected} (a port in 1..65535, a well-formed [IPv6] literal)",
            code=_CONFIG,
        ) from None
    if parts.username is not None or parts.password is not None:
        raise config_error(field, _mask_url(text), f"{expected} without credentials (use api_key)")
    if parts.scheme not in _URL_PORTS:
        raise config_error(field, text, expected)
    if not host:
        raise config_error(field, text, f"{expected} with a host")
    if port == 0:
        raise config_error(field, text, f"{expected} (a port in 1..65535)")
    if ("[" in parts.netloc or "]" in parts.netloc) and not _IPV6_NETLOC.fullmatch(
        parts.netloc.rpartition("@")[2]
    ):
        raise config_error(field, text, f"{expected} (a well-formed [IPv6] literal)")
    if "[" in parts.netloc and not _valid_ipv6(host):
        raise config_error(field, text, f"{expected} (a well-formed [IPv6] literal)")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise config_error(field, text, f"{expected} without a query or fragment")
    return text


def check_device(field: str, value: object) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` (device availability is checked when
    the encoder is built)."""
    ok = isinstance(value, str) and (
        value in _DEVICE_WORDS
        or (value.startswith("cuda:") and value[5:].isdigit() and value[5:].isascii())
    )
    if not ok:
        raise config_error(
            field,
            value,
            "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
            code=ErrorCode.VALIDATION_DEVICE,
        )
    return str(value)


def check_max_tokens(field: str, value: object, *, code: ErrorCode = _CONFIG) -> int:
    """A completion budget: an int in [0, 2**31 - 1] (0 is honoured; the upper bound is the
    signed 32-bit int servers parse it into)."""
    return check_int(field, value, minimum=0, maximum=MAX_TOKENS_LIMIT, code=code)


def check_temperature(field: str, value: object, *, code: ErrorCode = _CONFIG) -> float:
    """A sampling temperature in [0, 2]."""
    return check_number(field, value, minimum=0.0, maximum=2.0, code=code)


def _valid_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _mask_url(text: str) -> str:
    """``text`` with any ``user:password@`` replaced, for error messages."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    # Up to the last "@" (before any query): a password may hold a "/" that urllib would take
    # for the start of the path; masking too much of an error message costs nothing.
    head, mark, tail = rest.partition("?")
    if "@" in head:
        head = "***@" + head.rpartition("@")[2]
    return f"{scheme}://{head}{mark}{tail}"
