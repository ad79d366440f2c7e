"""OTEL_SEMCONV_STABILITY_OPT_IN: today's names, the coming inference names, or both."""

from __future__ import annotations

import pytest
from otel_support import REQUEST, RESPONSE, make_captured

from pixel_llm_otel.errors import RetryExhausted
from pixel_llm_otel.hooks import ChatResponseInfo
from pixel_llm_otel.telemetry._names_mode import NameMode, name_mode

CURRENT = {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
COMING = {
    "gen_ai.client.inference.duration",
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "gen_ai.client.inference.usage.reasoning.output_tokens",
}
DETAILED = ChatResponseInfo(
    response_id="chatcmpl-1",
    response_model="qwen2-vl-7b",
    finish_reasons=("stop",),
    input_tokens=42,
    output_tokens=7,
    cached_input_tokens=30,
    reasoning_output_tokens=3,
    image_input_tokens=12,
)


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        pytest.param("", NameMode.CURRENT, id="unset"),
        pytest.param("http", NameMode.CURRENT, id="other-opt-in"),
        pytest.param("gen_ai_inference", NameMode.COMING, id="coming"),
        pytest.param("http/dup, gen_ai_inference/dup", NameMode.BOTH, id="dup-in-a-list"),
        pytest.param("gen_ai_inference,gen_ai_inference/dup", NameMode.BOTH, id="dup-wins"),
    ],
)
def test_opt_in_value_picks_the_mode(value: str, mode: NameMode) -> None:
    """The comma-separated list is read like OpenTelemetry's other migrations."""
    assert name_mode(value) is mode


def _metric_names(cap: object) -> set[str]:
    data = cap.reader.get_metrics_data()  # type: ignore[attr-defined]
    return {
        m.name
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name.startswith("gen_ai.")
    }


@pytest.mark.parametrize(
    ("opt_in", "expected"),
    [
        pytest.param(None, CURRENT, id="default"),
        pytest.param("gen_ai_inference", COMING, id="coming-only"),
        pytest.param("gen_ai_inference/dup", CURRENT | COMING, id="both"),
    ],
)
def test_metrics_carry_the_chosen_names(
    monkeypatch: pytest.MonkeyPatch, opt_in: str | None, expected: set[str]
) -> None:
    """Exactly the chosen names are emitted, with the same attributes and counts."""
    if opt_in is None:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    else:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in)
    cap = make_captured(instrument_http=False)
    with cap.observer.chat(REQUEST) as c:
        c.response(DETAILED)
    assert _metric_names(cap) == expected
    if "gen_ai.client.inference.duration" in expected:
        (point,) = cap.points("gen_ai.client.inference.duration")
        assert point.count == 1
        assert point.attributes["gen_ai.provider.name"] == "lm_studio"
        assert "gen_ai.system" not in point.attributes
        assert [p.value for p in cap.points("gen_ai.client.inference.usage.input_tokens")] == [42]
        assert [p.value for p in cap.points("gen_ai.client.inference.usage.output_tokens")] == [7]
        cached = cap.points("gen_ai.client.inference.usage.cache_read.input_tokens")
        assert [p.value for p in cached] == [30]
    attributes = dict(cap.span("chat qwen2-vl").attributes or {})
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 30
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 3
    assert attributes["gen_ai.usage.image.input_tokens"] == 12
    assert attributes["gen_ai.provider.name"] == "lm_studio"
    assert "gen_ai.system" not in attributes


@pytest.mark.parametrize("opt_in", ["", "gen_ai_inference"], ids=["default", "coming"])
def test_exception_event_only_with_the_coming_names(
    monkeypatch: pytest.MonkeyPatch, opt_in: str
) -> None:
    """A failed chat emits gen_ai.client.operation.exception, correlated, only when opted in."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in)
    cap = make_captured(instrument_http=False)
    with cap.observer.chat(REQUEST) as c:
        c.fail(RetryExhausted(attempts=3, last_error=TimeoutError("read timed out")))
    events = cap.logs("gen_ai.client.operation.exception")
    assert len(events) == (1 if opt_in else 0)
    if events:
        chat = cap.span("chat qwen2-vl")
        (event,) = events
        assert event.span_id == chat.context.span_id
        assert event.attributes["error.type"] == chat.attributes["error.type"]
        assert event.attributes["exception.type"] == "RetryExhausted"
    assert cap.logs("gen_ai.client.inference.operation.details") == []  # no content mode


def test_responses_without_details_record_no_detail_attributes() -> None:
    """No usage details reported: no detail attribute, no zero made up."""
    cap = make_captured(instrument_http=False)
    with cap.observer.chat(REQUEST) as c:
        c.response(RESPONSE)
    attributes = dict(cap.span("chat qwen2-vl").attributes or {})
    assert not [
        k for k in attributes if ".cache_read." in k or ".reasoning." in k or ".image." in k
    ]
