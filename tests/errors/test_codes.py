"""The ERR_* code table: stable strings and complete, sensible metadata."""

from __future__ import annotations

import pytest

from pixel_llm_otel.errors import CODE_INFO, ErrorCategory, ErrorCode
from pixel_llm_otel.errors.codes import info


def test_every_code_has_metadata() -> None:
    """CODE_INFO describes exactly the members of ErrorCode."""
    assert set(CODE_INFO) == set(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode), ids=[c.value for c in ErrorCode])
def test_code_strings_and_metadata_are_well_formed(code: ErrorCode) -> None:
    """Each code is 'ERR_' + its name, with a message and an actionable suggestion."""
    assert code.value == f"ERR_{code.name}"
    assert str(code) == code.value
    meta = code.info
    assert meta.code is code
    assert meta.message.endswith(".")
    assert len(meta.message) > 15
    assert len(meta.suggestion) > 15
    assert info(code.value) is meta


@pytest.mark.parametrize(
    "code",
    [c for c in ErrorCode if c.info.category is ErrorCategory.VALIDATION],
    ids=lambda c: c.value,
)
def test_validation_codes_are_never_retried_and_never_trip_the_breaker(code: ErrorCode) -> None:
    """A caller's bad input says nothing about the server's health."""
    assert code.info.retryable is False
    assert code.info.trips_breaker is False


def test_unknown_string_is_rejected() -> None:
    """info() of an unknown string raises ValueError (the enum's own lookup)."""
    with pytest.raises(ValueError, match="ERR_NOPE"):
        info("ERR_NOPE")
