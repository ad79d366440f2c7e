"""Every hostile scenario x sync/async x raise/no-raise/fallback ends in its documented outcome,
typed, within the deadline plus the slack.

The table below is the documented outcome (docs/error-handling-guide.md, "Hostile servers"):
the error the caller gets (raised with ``raise_on_failure=True``, else in ``result.error``), the
code of the failure behind it, the retry's reason for giving up, and the attempts made.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import torch
from hostile import HostileServer, default_handlers
from support import (
    DEADLINE,
    FALLBACK_TEXT,
    FLAVOURS,
    MODES,
    ROOMY_DEADLINE,
    SLACK,
    call,
    make_llm,
)

from pixel_llm_otel.errors import APIError, ErrorCode, PixelLMError, RetryExhausted


@dataclass(frozen=True)
class Outcome:
    """The documented outcome of one scenario."""

    error: type[PixelLMError]  # what the caller gets
    codes: frozenset[ErrorCode]  # the failure's code (RetryExhausted: its last error's)
    reason: str | None  # RetryExhausted's reason
    attempts: int  # attempts made

    @property
    def deadline(self) -> float:
        """DEADLINE where the deadline ends the call; a roomy one where the call ends itself."""
        return DEADLINE if self.reason == "deadline" else ROOMY_DEADLINE


def _exhausted(reason: str, attempts: int, *codes: ErrorCode) -> Outcome:
    return Outcome(RetryExhausted, frozenset(codes), reason, attempts)


def _refused(code: ErrorCode) -> Outcome:
    return Outcome(APIError, frozenset({code}), None, 1)  # not retryable: raised as is


_C = ErrorCode
_TIMEOUT = (_C.TIMEOUT_TOTAL, _C.TIMEOUT_READ)

OUTCOMES: dict[str, Outcome] = {
    "stall-after-headers": _exhausted("deadline", 1, *_TIMEOUT),
    "silence": _exhausted("deadline", 1, *_TIMEOUT),
    "trickle": _exhausted("deadline", 1, *_TIMEOUT),
    "huge": _refused(_C.RESPONSE_TOO_LARGE),
    "huge-chunked": _refused(_C.RESPONSE_TOO_LARGE),
    "gzip-bomb": _refused(_C.RESPONSE_TOO_LARGE),
    "deflate-bomb": _refused(_C.RESPONSE_TOO_LARGE),
    "invalid-utf8": _exhausted("max_attempts", 3, _C.RESPONSE_MALFORMED),
    "wrong-types": _exhausted("max_attempts", 3, _C.RESPONSE_INVALID),
    "deep-json": _exhausted("max_attempts", 3, _C.RESPONSE_MALFORMED),
    "html": _exhausted("max_attempts", 3, _C.RESPONSE_MALFORMED),
    "redirect-loop": _refused(_C.RESPONSE_INVALID),
    "redirect-cross-host": _refused(_C.RESPONSE_INVALID),
    "reset-mid-body": _exhausted("max_attempts", 3, _C.CONNECTION_RESET),
    "eof": _exhausted("max_attempts", 3, _C.CONNECTION_RESET),
    "not-http": _exhausted("max_attempts", 3, _C.RESPONSE_MALFORMED),
    "retry-after-absurd": _exhausted("deadline", 1, _C.RATE_LIMITED),
    "retry-after-garbage": _exhausted("max_attempts", 3, _C.RATE_LIMITED),
    "retry-after-negative": _exhausted("max_attempts", 3, _C.RATE_LIMITED),
    "retry-after-far-future": _exhausted("deadline", 1, _C.RATE_LIMITED),
    "echo-headers": _exhausted("max_attempts", 3, _C.HTTP_SERVER_ERROR),
}


def _check(outcome: Outcome, error: BaseException | None) -> None:
    assert isinstance(error, outcome.error), repr(error)
    if isinstance(error, RetryExhausted):
        assert error.context["reason"] == outcome.reason
        assert error.attempts == outcome.attempts
        last = error.last_error
        assert isinstance(last, PixelLMError), repr(last)
        assert last.code in outcome.codes, str(last)
    else:
        assert error.code in outcome.codes, str(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("scenario", list(OUTCOMES))
def test_scenario_ends_in_its_documented_outcome_within_the_deadline(
    hostile: HostileServer,
    image: torch.Tensor,
    log_stream: io.StringIO,
    scenario: str,
    flavour: str,
    mode: str,
) -> None:
    """The call returns (None / the fallback) or raises the typed error, within deadline + slack."""
    outcome = OUTCOMES[scenario]
    llm = make_llm(hostile.url(scenario), mode, log_stream, deadline=outcome.deadline)
    done = call(llm, flavour, mode, image)
    assert done.elapsed <= outcome.deadline + SLACK, f"{done.elapsed:.3f}s"
    _check(outcome, done.error)
    if mode == "raise":
        assert done.result is None  # raised, not returned
        return
    assert done.raised is None
    assert done.result is not None
    assert done.result.attempts == outcome.attempts
    if mode == "fallback":
        assert (done.result.text, done.result.source) == (FALLBACK_TEXT, "default")
    else:
        assert (done.result.text, done.result.source) == (None, None)


def test_the_table_covers_every_misbehaving_scenario() -> None:
    """Every built-in scenario but the well-behaved, echoing and streaming ones has an outcome
    (echoes: test_secrets_echoed.py; the endless stream: test_client_edges.py)."""
    served = {
        name
        for name in default_handlers()
        if name != "ok" and not name.startswith(("echo-", "sse-"))
    }
    assert served <= set(OUTCOMES)


def test_a_cross_host_redirect_is_never_followed(
    hostile: HostileServer, image: torch.Tensor, log_stream: io.StringIO
) -> None:
    """The redirect's target host never receives the request (nor the key)."""
    call(make_llm(hostile.url("redirect-cross-host"), "no-raise", log_stream), "sync", "x", image)
    assert hostile.seen("elsewhere") == []


def test_a_well_behaved_server_still_answers(
    hostile: HostileServer, image: torch.Tensor, log_stream: io.StringIO
) -> None:
    """The baseline: the same pipeline settings caption fine against the well-behaved route."""
    done = call(make_llm(hostile.url("ok"), "no-raise", log_stream), "sync", "no-raise", image)
    assert done.result is not None
    assert (done.result.text, done.result.source) == ("a caption", "llm")
