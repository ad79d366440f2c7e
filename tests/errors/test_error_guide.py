"""docs/error-handling-guide.md stays in sync with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixel_llm_otel.errors import ErrorCode
from pixel_llm_otel.errors._docs import BLOCKS, CLASSIFIER_ROWS, extract, render

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "error-handling-guide.md"
REGENERATE = "python -m pixel_llm_otel.errors._docs docs/error-handling-guide.md"


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_generated_block_matches_the_code(guide: str, name: str) -> None:
    """Each generated table equals what the code renders now (else: run the regenerator)."""
    assert extract(guide, name) == render(name), f"stale table {name!r}; run: {REGENERATE}"


def test_guide_title_and_every_code_is_documented(guide: str) -> None:
    """The guide has its title and mentions every ERR_* code."""
    assert guide.startswith("# Error Handling Guide\n")
    missing = [c.value for c in ErrorCode if f"`{c.value}`" not in guide]
    assert missing == []


def test_classifier_table_covers_every_code() -> None:
    """The classifier table lists every code that classification can produce from a raw error."""
    produced = {code for _, code in CLASSIFIER_ROWS}
    not_from_raw = {c for c in ErrorCode if c.name.startswith("VALIDATION_")} | {
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.RETRY_EXHAUSTED,
        ErrorCode.STREAM_INTERRUPTED,  # raised by the client's stream reader
        ErrorCode.CLIENT_CLOSED,
    }
    assert produced | not_from_raw == set(ErrorCode)


def test_guide_has_the_required_sections(guide: str) -> None:
    """Retry formula, breaker diagram, fallback order, logs, config and troubleshooting exist."""
    for needle in (
        "cap(n)",
        "```mermaid",
        "stateDiagram-v2",
        '("cache", "default", "custom")',
        "## 8. Structured logs",
        "## 9. Configuration examples",
        "### LM Studio not running",
        "### Timeouts",
        "### 429 rate limited",
        "### Breaker open",
        "### Bad tensors",
    ):
        assert needle in guide


def test_documented_retry_defaults_match_retry_config(guide: str) -> None:
    """The defaults table in the guide quotes RetryConfig's real defaults."""
    from pixel_llm_otel.resilience.retry import RetryConfig

    cfg = RetryConfig()
    for field_name in (
        "max_attempts",
        "initial_delay",
        "max_delay",
        "backoff_multiplier",
        "jitter",
        "deadline",
    ):
        row = re.search(rf"^\| `{field_name}` \| `([^`]+)`", guide, re.M)
        assert row is not None, field_name
        assert row.group(1) == str(getattr(cfg, field_name))
