"""Scrubber: the key (any shape), Bearer tokens and URL passwords never survive server text."""

from __future__ import annotations

import traceback

import pytest

from pixel_llm_otel.client._secrets import MARKER, Scrubber

KEYS = {
    "short": "abc123",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "base64": "a+b/c=d==",
    "sk": "sk-0123456789abcdef",
    "regex-chars": "k(e)y*[x]?$^",
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize(
    "template",
    [
        "{key}",
        "invalid key '{key}' given",
        '{{"error": {{"message": "bad token {key}"}}}}',
        "Authorization: Bearer {key}",
        "authorization: bearer {key}, retry",
        "https://user:{key}@proxy.local/v1",
        "{escaped}",
        "{quoted}",
    ],
    ids=["bare", "quoted", "json", "bearer", "bearer-lower", "url", "json-escaped", "percent"],
)
def test_the_key_is_replaced_in_text_and_bytes(key: str, template: str) -> None:
    """Every spelling of the key an echo may use is replaced, in text and in raw bytes."""
    from urllib.parse import quote

    text = template.format(key=key, escaped=key.replace("/", "\\/"), quoted=quote(key, safe=""))
    scrub = Scrubber(key)
    cleaned = scrub.text(text)
    assert key not in cleaned
    assert MARKER in cleaned
    raw = scrub.bytes(text.encode())
    assert key.encode() not in raw
    assert MARKER.encode() in raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer some.other-token", f"Bearer {MARKER}"),
        ("auth=BEARER xyz;", f"auth=BEARER {MARKER};"),
        ("see http://bob:hunter2@host:8080/x", f"see http://bob:{MARKER}@host:8080/x"),
        ("plain text stays", "plain text stays"),
        ("http://host/v1 has no user info", "http://host/v1 has no user info"),
    ],
    ids=["bearer", "bearer-upper", "url-password", "plain", "url-without-userinfo"],
)
def test_tokens_and_url_passwords_are_replaced_without_a_key(text: str, expected: str) -> None:
    """With no key configured, Bearer tokens and URL passwords are still replaced."""
    assert Scrubber(None).text(text) == expected


def test_the_marker_is_fixed_and_text_around_it_is_kept() -> None:
    """Only the secret goes; the message around it stays readable."""
    assert Scrubber("s3cr3t").text("key s3cr3t rejected") == f"key {MARKER} rejected"


def test_an_exception_chain_is_scrubbed_in_place() -> None:
    """Messages of an exception, its cause and context (args and message attributes) are cleaned."""
    key = "abc+/=123"

    class LibraryError(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.message = message

    def fail() -> None:
        try:
            raise ValueError(f"line {key!r}".encode())
        except ValueError as inner:
            raise LibraryError(f"bad status line Bearer {key}") from inner

    with pytest.raises(LibraryError) as caught:
        fail()
    exc = caught.value
    Scrubber(key).exception(exc)
    rendered = "".join(traceback.format_exception(exc))
    assert key not in rendered
    assert key not in exc.message
    assert MARKER in rendered
