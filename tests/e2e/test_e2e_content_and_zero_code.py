"""End to end, host apps in their own processes: content reaches Jaeger (span modes) and the
collector (the details event, event modes) only as opted in, and the API key never, even with
every request header captured; the zero-code path (`opentelemetry-instrument` with every installed
instrumentor, aiohttp-client included, no telemetry code in the app) delivers the same trace tree,
one POST per attempt, and metrics; and the coming metric names work in both modes.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable

import pytest
from _support.procs import wait_until
from _support.stack import Stack
from e2e_support import (
    CHAT,
    MODEL,
    AppProcess,
    app_args,
    contains,
    spans_named,
    tags,
    tree,
    unique,
)

from pixel_llm_otel.sim import SimulatorThread

pytestmark = pytest.mark.e2e

TWO_POSTS = ("pixel_llm.generate", ("pixel_llm.encode",), (CHAT, ("POST",), ("POST",)))


@pytest.mark.parametrize("mode", ["no_content", "span_only", "event_only", "span_and_event"])
def test_content_reaches_jaeger_and_the_collector_only_as_opted_in(
    e2e_stack: Stack, start_app: Callable[..., AppProcess], sim: SimulatorThread, mode: str
) -> None:
    """Content on the Jaeger span only in span modes; the details event through the collector only
    in event modes; nowhere by default; the API key never, even with every header captured."""
    service = unique(f"e2e-content-{mode.replace('_', '-')}")
    prompt, key = unique("e2e-opt-in-prompt"), unique("sk-e2e-opt-in")
    env = {
        **e2e_stack.otel_env(service),
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": mode,
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": ".*",
    }
    sim.script(["503", "ok"])  # a retried call: the key went out twice
    app = start_app(service, app_args(sim.base_url, prompt=prompt, api_key=key, calls=1), env)
    app.finish()
    (call,) = app.calls()
    assert e2e_stack.jaeger is not None
    trace = e2e_stack.jaeger.wait_for_trace(call["trace_id"], timeout=30, min_spans=5)
    assert tree(trace) == TWO_POSTS
    (chat,) = spans_named(trace, CHAT)
    on_span = mode in ("span_only", "span_and_event")
    on_event = mode in ("event_only", "span_and_event")
    if on_span:
        messages = json.loads(tags(chat)["gen_ai.input.messages"])
        assert messages[0]["role"] == "user"
        assert prompt in json.dumps(messages)
        assert "gen_ai.output.messages" in tags(chat)
    else:
        assert not contains(trace, prompt)
        assert "gen_ai.input.messages" not in tags(chat)
    for post in spans_named(trace, "POST"):
        headers = tags(post)
        assert "http.request.header.content_type" in headers  # capture is on
        # Jaeger shows the string-array attribute as its JSON text
        assert json.loads(headers["http.request.header.authorization"]) == ["[REDACTED]"]
    assert not contains(trace, key)

    log = e2e_stack.collector.log_path
    trace_id = call["trace_id"]
    # the spans of this trace reached the collector's debug exporter (detailed)
    wait_until(lambda: trace_id in log.read_text(errors="replace"), timeout=30, what="trace")
    if on_event:
        wait_until(
            lambda: _details_event_with(log.read_text(errors="replace"), trace_id, prompt),
            timeout=30,
            what="the operation-details event with the prompt",
        )
    else:
        app_log = _records_of(log.read_text(errors="replace"), trace_id)
        assert "gen_ai.client.inference.operation.details" not in app_log
    if not (on_span or on_event):
        assert prompt not in log.read_text(errors="replace")
    assert key not in log.read_text(errors="replace")


def _records_of(text: str, trace_id: str) -> str:
    """The debug exporter's log-record blocks that carry ``trace_id``."""
    blocks = text.split("LogRecord #")
    return "\n".join(b for b in blocks[1:] if trace_id in b)


def _details_event_with(text: str, trace_id: str, prompt: str) -> bool:
    records = _records_of(text, trace_id)
    return "gen_ai.client.inference.operation.details" in records and prompt in records


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.distro") is None,
    reason="opentelemetry-distro is not installed: `opentelemetry-instrument` would set up no "
    "SDK providers (add opentelemetry-distro to the otel extra)",
)
def test_zero_code_app_reaches_jaeger_and_prometheus(
    e2e_stack: Stack, start_app: Callable[..., AppProcess], sim: SimulatorThread
) -> None:
    """Zero code (opentelemetry-instrument): the contract's trace tree and metrics arrive."""
    service = unique("e2e-zero-code")
    # every installed instrumentor on (aiohttp-client, the GenAI openai one, ours): still exactly
    # one POST span per attempt, under chat, with the resend count
    env = {**e2e_stack.otel_env(service)}
    sim.script(["503", "ok"])
    app = start_app(
        service,
        app_args(sim.base_url, calls=2, configure=False, breaker_name=service),
        env,
        zero_code=True,
    )
    app.finish()
    calls = app.calls()
    assert [c["source"] for c in calls] == ["llm", "llm"]
    assert all(c["trace_id"] for c in calls), calls
    assert e2e_stack.jaeger is not None
    trace = e2e_stack.jaeger.wait_for_trace(calls[0]["trace_id"], timeout=30, min_spans=5)
    assert tree(trace) == TWO_POSTS
    posts = spans_named(trace, "POST")
    assert [tags(p).get("http.request.resend_count") for p in posts] == [None, 1]
    (process,) = trace["processes"].values()
    assert process["serviceName"] == service
    assert e2e_stack.prometheus is not None
    result = e2e_stack.prometheus.wait_for(
        f'pixel_llm_generate_requests_total{{job="{service}", gen_ai_request_model="{MODEL}"}}',
        timeout=30,
    )
    assert [float(r["value"][1]) for r in result] == [2.0]


@pytest.mark.parametrize("opt_in", ["gen_ai_inference", "gen_ai_inference/dup"])
def test_coming_names_reach_prometheus_and_the_unified_series(
    e2e_stack: Stack, start_app: Callable[..., AppProcess], sim: SimulatorThread, opt_in: str
) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN: the coming names arrive (alone or beside today's) and the
    recording rules give the same unified series, counting each call once."""
    service = unique("e2e-names-" + opt_in.replace("/", "-").replace("_", "-"))
    env = {**e2e_stack.otel_env(service), "OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}
    app = start_app(service, app_args(sim.base_url, calls=3, breaker_name=service), env)
    app.finish()
    assert e2e_stack.prometheus is not None
    prom = e2e_stack.prometheus
    job = f'job="{service}"'

    def total(metric: str) -> float | None:
        result = prom.query(f"sum({metric}{{{job}}})")
        return float(result[0]["value"][1]) if result else None

    for metric in (
        "gen_ai_client_inference_duration_seconds_count",
        "pixel_llm_generate_requests_total",
    ):
        wait_until(lambda m=metric: total(m) == 3.0, timeout=30, what=f"{metric} == 3")
    assert (total("gen_ai_client_inference_usage_output_tokens_total") or 0) > 0
    # today's names: beside the coming ones in /dup mode (same export), absent otherwise
    assert total("gen_ai_client_operation_duration_seconds_count") == (
        3.0 if opt_in.endswith("/dup") else None
    )
    unified = prom.wait_for(f"pixel_llm:gen_ai_operations:rate5m{{{job}}}", timeout=30)
    assert len(unified) == 1  # one series, not one per name
    by_type = prom.wait_for(f"pixel_llm:gen_ai_tokens:rate5m{{{job}}}", timeout=30)
    assert sorted(r["metric"]["gen_ai_token_type"] for r in by_type) == ["input", "output"]
