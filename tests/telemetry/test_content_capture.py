"""Chat content is recorded only on opt-in, bounded, text only."""

from __future__ import annotations

import json

import pytest
from otel_support import REQUEST, RESPONSE, make_captured

from pixel_llm_otel.telemetry._content import ContentPolicy

CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages"}


def _chat_attributes(**instrument_kwargs: object) -> dict[str, object]:
    cap = make_captured(instrument_http=False, **instrument_kwargs)
    with cap.observer.chat(REQUEST) as c:
        c.response(RESPONSE)
    return dict(cap.span("chat qwen2-vl").attributes or {})


@pytest.mark.parametrize(
    ("env", "captured"),
    [
        pytest.param(None, False, id="unset"),
        pytest.param("false", False, id="false"),
        pytest.param("true", True, id="true"),
        pytest.param("TRUE", True, id="upper"),
    ],
)
def test_env_var_opts_in(monkeypatch: pytest.MonkeyPatch, env: str | None, captured: bool) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT decides; off by default."""
    if env is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", env)
    attributes = _chat_attributes()
    assert (attributes.keys() >= CONTENT_KEYS) is captured
    if not captured:
        assert not CONTENT_KEYS & attributes.keys()
        assert not any("cat on a mat" in str(v) for v in attributes.values())


def test_captured_messages_follow_the_semconv_shape() -> None:
    """Input and output are JSON lists of role + typed parts; finish reason on the output."""
    attributes = _chat_attributes(capture_content=True)
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "describe the image"}]}
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "a cat on a mat"}],
            "finish_reason": "stop",
        }
    ]


def test_image_parts_keep_their_type_never_their_data() -> None:
    """An image_url part is recorded as its type only: no base64 payload on the span."""
    policy = ContentPolicy(enabled=True)
    value = policy.input_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    )
    assert value is not None
    assert "base64" not in value
    assert json.loads(value)[0]["parts"] == [
        {"type": "text", "content": "what is this?"},
        {"type": "image_url"},
    ]


@pytest.mark.parametrize("size", [10, 5_000, 100_000], ids=["small", "over", "huge"])
def test_content_is_bounded_with_a_marker(size: int) -> None:
    """Every content attribute stays within max_chars; a cut one says it was truncated."""
    policy = ContentPolicy(enabled=True, max_chars=1000)
    value = policy.output_messages("x" * size, ("length",))
    assert value is not None
    assert len(value) <= 1000
    assert ("truncated" in value) is (size > 1000)


def test_disabled_policy_returns_nothing() -> None:
    """Capture off: no value at all, whatever the input."""
    policy = ContentPolicy()
    assert policy.input_messages([{"role": "user", "content": "hi"}]) is None
    assert policy.output_messages("hello", ()) is None
