"""End to end, host apps in their own processes: (f) with content capture opted in the prompt
reaches the collector and Jaeger but the API key still never does, even with every request
header captured; and the zero-code path (`opentelemetry-instrument`, no telemetry code in the
app) delivers the same trace tree and metrics.
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


def test_opt_in_captures_prompt_never_the_key(
    e2e_stack: Stack, start_app: Callable[..., AppProcess], sim: SimulatorThread
) -> None:
    """Content opt-in: the prompt is captured, Authorization is [REDACTED], the key is nowhere."""
    service = unique("e2e-content")
    prompt, key = unique("e2e-opt-in-prompt"), unique("sk-e2e-opt-in")
    env = {
        **e2e_stack.otel_env(service),
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
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
    messages = json.loads(tags(chat)["gen_ai.input.messages"])
    assert messages[0]["role"] == "user"
    assert prompt in json.dumps(messages)
    assert "gen_ai.output.messages" in tags(chat)
    for post in spans_named(trace, "POST"):
        headers = tags(post)
        assert "http.request.header.content_type" in headers  # capture is on
        # Jaeger shows the string-array attribute as its JSON text
        assert json.loads(headers["http.request.header.authorization"]) == ["[REDACTED]"]
    assert not contains(trace, key)

    log = e2e_stack.collector.log_path
    wait_until(lambda: prompt in log.read_text(errors="replace"), timeout=30, what="prompt")
    assert key not in log.read_text(errors="replace")


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
    env = {
        **e2e_stack.otel_env(service),
        # ours instruments aiohttp itself, with the resend-count and redaction hooks
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "aiohttp-client",
    }
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
