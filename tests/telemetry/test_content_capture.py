"""Content capture: every mode x span/event x image on/off x hash/cap/hook, schema-checked."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import pathlib
from typing import Any

import pytest
from genai_schema import check_messages, check_system_instructions
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from otel_support import RESPONSE, Captured, make_captured

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.hooks import ChatRequestInfo
from pixel_llm_otel.telemetry import _content
from pixel_llm_otel.telemetry._content import CaptureMode, ContentPolicy, capture_mode
from pixel_llm_otel.telemetry._messages import build_content

CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"}
REF_KEYS = {
    "gen_ai.input.messages_ref",
    "gen_ai.output.messages_ref",
    "gen_ai.system_instructions_ref",
}
DETAILS = "gen_ai.client.inference.operation.details"
CHAT = "chat qwen2-vl"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PNG_B64 = base64.b64encode(PNG).decode()
SECRET = "sk-live-abcdefghijklmnop"


def _request(image: bool) -> ChatRequestInfo:
    user: Any = "describe the image"
    if image:
        user = [
            {"type": "text", "text": "describe the image"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        ]
    return ChatRequestInfo(
        model="qwen2-vl",
        provider="lm_studio",
        server_address="127.0.0.1",
        server_port=1234,
        max_tokens=64,
        temperature=0.2,
        messages=(
            {"role": "system", "content": "you caption images"},
            {"role": "user", "content": user},
        ),
    )


def _run(cap: Captured, request: ChatRequestInfo) -> tuple[dict[str, Any], list[Any]]:
    with cap.observer.chat(request) as c:
        c.response(RESPONSE)
    span_attributes = dict(cap.span(CHAT).attributes or {})
    return span_attributes, cap.logs(DETAILS)


def _image_part(messages: list[dict[str, Any]]) -> dict[str, Any]:
    (part,) = [p for m in messages for p in m["parts"] if p["type"] == "blob"]
    return part


@pytest.mark.parametrize("mode", [m.value for m in CaptureMode])
@pytest.mark.parametrize("image", [False, True], ids=["text", "image"])
@pytest.mark.parametrize("image_bytes", ["hash", "cap", "hook"])
def test_content_lands_only_where_the_mode_says(
    mode: str, image: bool, image_bytes: str, tmp_path: pathlib.Path
) -> None:
    """Span attributes and/or the details event per mode; images hashed, inlined or uploaded."""
    kwargs: dict[str, Any] = {"capture_content": mode}
    if image_bytes == "cap":
        kwargs["content_image_max_bytes"] = 64 * 1024
    elif image_bytes == "hook":
        kwargs["content_upload_path"] = str(tmp_path)
    cap = make_captured(instrument_http=False, **kwargs)
    on_span = mode in ("span_only", "span_and_event")
    on_event = mode in ("event_only", "span_and_event")

    attributes, events = _run(cap, _request(image))

    assert (attributes.keys() >= CONTENT_KEYS) is on_span
    if not on_span:
        assert not CONTENT_KEYS & attributes.keys()
    assert len(events) == int(on_event)
    places = [attributes] * on_span + [dict(e.attributes) for e in events]
    chat = cap.span(CHAT)
    for event in events:  # correlated to the chat span
        assert (event.trace_id, event.span_id) == (chat.context.trace_id, chat.context.span_id)
        assert event.attributes["gen_ai.operation.name"] == "chat"
        assert event.attributes["gen_ai.usage.output_tokens"] == 7
    for values in places:
        inputs = check_messages(values["gen_ai.input.messages"])
        outputs = check_messages(values["gen_ai.output.messages"], output=True)
        system = check_system_instructions(values["gen_ai.system_instructions"])
        assert system == [{"type": "text", "content": "you caption images"}]
        assert [m["role"] for m in inputs] == ["user"]
        assert outputs == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "a cat on a mat"}],
                "finish_reason": "stop",
            }
        ]
        if image:
            part = _image_part(inputs)
            assert part["mime_type"] == "image/png"
            assert part["modality"] == "image"
            assert part["size"] == len(PNG)
            assert part["sha256"] == hashlib.sha256(PNG).hexdigest()
            assert ("content" in part) is (image_bytes == "cap")
    everything = json.dumps([attributes] + [dict(e.attributes) for e in events], default=str)
    assert (PNG_B64 in everything) is (image and image_bytes == "cap" and bool(places))
    if image_bytes == "hook":
        _check_uploads(cap, attributes, events, tmp_path, image)
    else:
        assert not REF_KEYS & attributes.keys()


def _check_uploads(
    cap: Captured,
    attributes: dict[str, Any],
    events: list[Any],
    root: pathlib.Path,
    image: bool,
) -> None:
    """The hook wrote the full content (image bytes inlined); telemetry holds only references."""
    hook = _content_hook(cap)
    hook.flush()
    for values in [attributes] + [dict(e.attributes) for e in events]:
        assert values.keys() >= REF_KEYS
        for key in REF_KEYS:
            assert values[key].startswith("file://" + str(root))
    written = json.loads(
        pathlib.Path(attributes["gen_ai.input.messages_ref"].removeprefix("file://")).read_text()
    )
    check_messages(json.dumps(written))
    if image:
        assert _image_part(written)["content"] == PNG_B64
    out = attributes["gen_ai.output.messages_ref"].removeprefix("file://")
    assert "a cat on a mat" in pathlib.Path(out).read_text()


def _content_hook(cap: Captured) -> Any:
    observer: Any = cap.observer
    return observer.content.hook


def test_unsampled_calls_build_and_emit_no_content(tmp_path: pathlib.Path) -> None:
    """Content follows sampling: a dropped span gets no event and no upload either."""
    cap = make_captured(
        instrument_http=False,
        capture_content="span_and_event",
        content_upload_path=str(tmp_path),
        tracer_kwargs={"sampler": ALWAYS_OFF},
    )
    with cap.observer.chat(_request(True)) as c:
        c.response(RESPONSE)
    _content_hook(cap).flush()
    assert cap.spans() == []
    assert cap.logs() == []
    assert list(tmp_path.iterdir()) == []


def test_secrets_in_messages_are_redacted_in_every_mode() -> None:
    """A key pasted into a prompt never reaches the span or the event."""
    cap = make_captured(instrument_http=False, capture_content="span_and_event")
    request = _request(False)
    leaky = ChatRequestInfo(
        **{
            **{f: getattr(request, f) for f in request.__slots__},  # type: ignore[attr-defined]
            "messages": ({"role": "user", "content": f"my key is {SECRET}, Bearer {SECRET}"},),
        }
    )
    attributes, events = _run(cap, leaky)
    everything = json.dumps([attributes, *[dict(e.attributes) for e in events]], default=str)
    assert "[REDACTED]" in everything
    assert SECRET not in everything


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        pytest.param(None, CaptureMode.NO_CONTENT, id="unset"),
        pytest.param("", CaptureMode.NO_CONTENT, id="empty"),
        pytest.param("span_only", CaptureMode.SPAN_ONLY, id="span_only"),
        pytest.param("EVENT_ONLY", CaptureMode.EVENT_ONLY, id="upper"),
        pytest.param("span_and_event", CaptureMode.SPAN_AND_EVENT, id="both"),
        pytest.param("no_content", CaptureMode.NO_CONTENT, id="no_content"),
        pytest.param("true", CaptureMode.SPAN_ONLY, id="legacy-true"),
        pytest.param("false", CaptureMode.NO_CONTENT, id="legacy-false"),
        pytest.param("yes-please", CaptureMode.NO_CONTENT, id="invalid"),
    ],
)
def test_env_var_decides_the_mode(
    monkeypatch: pytest.MonkeyPatch, value: str | None, mode: CaptureMode
) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT takes the reference's values."""
    if value is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert capture_mode() is mode


def test_legacy_values_warn_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Legacy true: span_only, with one warning however often it is read."""
    monkeypatch.setattr(_content, "_warned", set())
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "TRUE")
    with caplog.at_level(logging.WARNING, logger="pixel_llm_otel.telemetry"):
        modes = {capture_mode() for _ in range(3)}
    assert modes == {CaptureMode.SPAN_ONLY}
    warnings = [r for r in caplog.records if "legacy" in r.getMessage()]
    assert len(warnings) == 1
    assert "span_only" in warnings[0].getMessage()


def test_keyword_wins_over_env_and_bad_keywords_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyword overrides the variable; a bad keyword is a ValidationError naming it."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_and_event")
    assert capture_mode("no_content") is CaptureMode.NO_CONTENT
    assert capture_mode(True) is CaptureMode.SPAN_ONLY
    with pytest.raises(ValidationError, match="capture_content"):
        capture_mode("everything")
    with pytest.raises(ValidationError, match="content_max_chars"):
        ContentPolicy(max_chars=3)


@pytest.mark.parametrize("size", [10, 5_000, 100_000], ids=["small", "over", "huge"])
def test_long_text_is_cut_and_the_json_stays_valid(size: int) -> None:
    """Text parts are cut with a marker so each value stays valid JSON within the bound."""
    policy = ContentPolicy(mode=CaptureMode.SPAN_ONLY, max_chars=1000)
    messages = [{"role": "user", "content": "y" * size}, {"role": "user", "content": "short"}]
    content = build_content(policy, messages, "x" * size, ("length",))
    values = content.json()
    inputs = check_messages(values["gen_ai.input.messages"])
    outputs = check_messages(values["gen_ai.output.messages"], output=True)
    texts = [p["content"] for m in inputs for p in m["parts"]]
    assert sum(map(len, texts)) <= 1000
    assert texts[1] == "short"  # short parts are kept whole
    assert ("truncated" in texts[0]) is (size > 1000)
    assert len(outputs[0]["parts"][0]["content"]) <= 1000


def test_remote_image_urls_become_uri_parts_without_query() -> None:
    """A non-data image URL is a uri part; its query string (signed tokens) is dropped."""
    policy = ContentPolicy(mode=CaptureMode.SPAN_ONLY)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://u:p@cdn/x.png?sig=abc#f"}}
            ],
        }
    ]
    (message,) = build_content(policy, messages, None, ()).input_messages
    assert message["parts"] == [
        {"type": "uri", "modality": "image", "mime_type": None, "uri": "https://cdn/x.png"}
    ]
