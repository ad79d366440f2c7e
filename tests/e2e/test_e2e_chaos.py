"""End to end, in process: the chaos run (e2e_chaos.py) exported by configure() from OTEL_*
variables through the real collector, then read back from Jaeger's and Prometheus' APIs.

(a) traces with their span tree and retry / breaker / fallback events, (b) every contract metric
with its labels, (c) every dashboard panel query returns data, (f) no prompt and no API key in
anything the collector received (content capture is off by default).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from _queries import PanelQuery, iter_all_panel_queries, render
from _support.procs import REPO, wait_until
from _support.stack import Stack
from e2e_chaos import ChaosRun
from e2e_support import (
    CHAT,
    MODEL,
    contains,
    root,
    span_events,
    spans_named,
    tags,
    tree,
)

pytestmark = pytest.mark.e2e

CONTRACT = REPO / "docs" / "telemetry-contract.md"
GENERATE, ENCODE = "pixel_llm.generate", "pixel_llm.encode"
ONE_POST = (GENERATE, (ENCODE,), (CHAT, ("POST",)))
TWO_POSTS = (GENERATE, (ENCODE,), (CHAT, ("POST",), ("POST",)))
THREE_POSTS = (GENERATE, (ENCODE,), (CHAT, ("POST",), ("POST",), ("POST",)))
NO_POST = (GENERATE, (ENCODE,), (CHAT,))

_GEN_AI = {
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "server_address",
    "server_port",
}
# Prometheus name (histograms: without _bucket/_count/_sum) -> labels the contract promises
CONTRACT_LABELS: dict[str, set[str]] = {
    "gen_ai_client_operation_duration_seconds": _GEN_AI | {"error_type"},
    "gen_ai_client_token_usage": _GEN_AI | {"gen_ai_token_type"},
    "pixel_llm_generate_requests_total": {
        "pixel_llm_outcome",
        "error_type",
        "gen_ai_request_model",
    },
    "pixel_llm_generate_duration_seconds": {"pixel_llm_outcome", "gen_ai_request_model"},
    "pixel_llm_retry_attempts_total": {"error_type", "pixel_llm_error_code"},
    "pixel_llm_retry_exhausted_total": {"error_type"},
    "pixel_llm_circuit_breaker_transitions_total": {
        "pixel_llm_circuit_breaker_name",
        "pixel_llm_circuit_breaker_from_state",
        "pixel_llm_circuit_breaker_to_state",
    },
    "pixel_llm_circuit_breaker_state": {
        "pixel_llm_circuit_breaker_name",
        "pixel_llm_circuit_breaker_state",
    },
    "pixel_llm_circuit_breaker_rejected_total": {"pixel_llm_circuit_breaker_name"},
    "pixel_llm_fallback_invocations_total": {
        "pixel_llm_fallback_strategy",
        "pixel_llm_fallback_result",
    },
    "pixel_llm_errors_total": {
        "error_type",
        "pixel_llm_error_code",
        "pixel_llm_error_category",
    },
    "pixel_llm_encoder_duration_seconds": {"pixel_llm_encoder_device"},
    "gen_ai_client_operation_time_to_first_chunk_seconds": _GEN_AI | {"error_type"},
    "gen_ai_client_operation_time_per_output_chunk_seconds": _GEN_AI | {"error_type"},
}
HISTOGRAMS = {
    "gen_ai_client_operation_duration_seconds",
    "gen_ai_client_token_usage",
    "pixel_llm_generate_duration_seconds",
    "pixel_llm_encoder_duration_seconds",
    "gen_ai_client_operation_time_to_first_chunk_seconds",
    "gen_ai_client_operation_time_per_output_chunk_seconds",
}


def contract_prometheus_names() -> set[str]:
    """The [Prometheus] column of the contract's metrics table (`_*` suffixes dropped)."""
    names = set()
    for line in CONTRACT.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`[a-z_.]+`", cells[0]) and cells[-1][:1] == "`":
            names.add(cells[-1].strip("`").removesuffix("_*"))
    return names


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settled(chaos_run: ChaosRun, e2e_stack: Stack) -> float:
    """A Unix time at which Prometheus holds the run's final counts and the recording rules
    have been evaluated on them; queries are evaluated at that instant, whatever the clock says
    when a test runs."""
    prom = e2e_stack.prometheus
    assert prom is not None
    job = chaos_run.service
    prom.wait_for(
        f'sum(pixel_llm_generate_requests_total{{job="{job}"}}) == {chaos_run.calls}',
        timeout=30,
    )
    for query in iter_all_panel_queries({"service": job, "model": MODEL}):
        if re.search(r"\w:\w", query.promql):  # a recorded series: wait for its rule
            prom.wait_for(query.promql, timeout=30)
    return time.time()


def query_at(stack: Stack, promql: str, at: float) -> list[dict[str, Any]]:
    assert stack.prometheus is not None
    return list(stack.prometheus.api("query", query=promql, time=f"{at:.3f}")["result"])


def series(stack: Stack, name: str, job: str, at: float) -> list[dict[str, str]]:
    """Label sets of every series of `name` for `job` (histograms: every suffix)."""
    selector = f'{{__name__=~"{name}(_bucket|_count|_sum)?", job="{job}"}}'
    return [r["metric"] for r in query_at(stack, selector, at)]


def values_by(stack: Stack, promql: str, at: float, *labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1])
        for r in query_at(stack, promql, at)
    }


def tree_size(node: tuple[Any, ...]) -> int:
    """Spans in a (name, *children) tree."""
    return 1 + sum(tree_size(child) for child in node[1:])


def trace_of(stack: Stack, run: ChaosRun, step: str, min_spans: int) -> dict[str, Any]:
    assert stack.jaeger is not None
    return stack.jaeger.wait_for_trace(run.trace_id(step), timeout=30, min_spans=min_spans)


# --- (a) traces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("success", ONE_POST),
        ("retried", TWO_POSTS),
        ("exhausted", THREE_POSTS),
        ("rejected", NO_POST),
        ("probe", ONE_POST),
        ("error", THREE_POSTS),
        ("malformed", THREE_POSTS),
        ("stream", ONE_POST),
        ("stream-cut", ONE_POST),
    ],
)
def test_trace_tree_in_jaeger(
    chaos_run: ChaosRun, e2e_stack: Stack, step: str, expected: tuple[Any, ...]
) -> None:
    """Each story step's trace is in Jaeger with the contract's span tree under one service."""
    trace = trace_of(e2e_stack, chaos_run, step, min_spans=tree_size(expected))
    assert tree(trace) == expected
    (process,) = trace["processes"].values()
    assert process["serviceName"] == chaos_run.service
    assert "service.version" in tags(process)
    generate = root(trace)
    assert tags(generate)["pixel_llm.outcome"] == chaos_run.results[step].outcome


@pytest.mark.parametrize(
    ("step", "end", "status"),
    [("stream", "completed", None), ("stream-cut", "interrupted", "ERROR")],
)
def test_streamed_call_trace(
    chaos_run: ChaosRun, e2e_stack: Stack, step: str, end: str, status: str | None
) -> None:
    """A streamed caption's chat span: stream flag, time to first chunk, how the stream ended."""
    trace = trace_of(e2e_stack, chaos_run, step, min_spans=tree_size(ONE_POST))
    (chat,) = spans_named(trace, CHAT)
    chat_tags = tags(chat)
    assert chat_tags["gen_ai.request.stream"] is True
    assert chat_tags["pixel_llm.stream.end"] == end
    assert 0 < chat_tags["gen_ai.response.time_to_first_chunk"] < chat["duration"] / 1e6
    assert chat_tags.get("otel.status_code") == status
    if status is not None:
        assert chat_tags["error.type"] == "StreamInterrupted"


def test_retried_call_trace(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """503 then ok: resend_count=1 on the resent POST, one retry event, traceparent per attempt."""
    trace = trace_of(e2e_stack, chaos_run, "retried", min_spans=5)
    first, second = spans_named(trace, "POST")
    assert "http.request.resend_count" not in tags(first)
    assert tags(second)["http.request.resend_count"] == 1
    assert [tags(p)["http.response.status_code"] for p in (first, second)] == [503, 200]
    (chat,) = spans_named(trace, CHAT)
    chat_tags = tags(chat)
    assert chat_tags["gen_ai.operation.name"] == "chat"
    assert chat_tags["gen_ai.provider.name"] == "lm_studio"
    assert chat_tags["gen_ai.request.model"] == MODEL
    assert chat_tags["gen_ai.response.model"] == MODEL
    assert chat_tags["pixel_llm.attempts"] == 2
    assert chat_tags["gen_ai.usage.output_tokens"] > 0
    assert span_events(chat) == [
        (
            "pixel_llm.retry",
            {
                "pixel_llm.retry.attempt": 1,
                "pixel_llm.retry.delay_s": 0.01,
                "error.type": "APIError",
                "pixel_llm.error.code": "ERR_HTTP_UNAVAILABLE",
            },
        )
    ]
    sent = {tuple(r.traceparent.split("-")[1:3]) for r in chaos_run.requests if r.traceparent}
    trace_id = chaos_run.trace_id("retried")
    assert {(trace_id, first["spanID"]), (trace_id, second["spanID"])} <= sent


def test_retried_call_in_otlp_api(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """Jaeger's /api/v3 (OTLP JSON) serves the same trace, resend count included."""
    trace_of(e2e_stack, chaos_run, "retried", min_spans=5)
    assert e2e_stack.jaeger is not None
    otlp = e2e_stack.jaeger.trace_otlp(chaos_run.trace_id("retried"))
    assert otlp is not None
    spans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["name"] for s in spans) == sorted([GENERATE, ENCODE, CHAT, "POST", "POST"])
    resend = [
        a["value"]
        for s in spans
        for a in s.get("attributes", [])
        if a["key"] == "http.request.resend_count"
    ]
    assert resend == [{"intValue": "1"}]


def test_exhausted_call_has_retry_breaker_and_fallback_events(
    chaos_run: ChaosRun, e2e_stack: Stack
) -> None:
    """503 x3: retry, breaker-open and exception events on chat; cache fallback on generate."""
    trace = trace_of(e2e_stack, chaos_run, "exhausted", min_spans=6)
    posts = spans_named(trace, "POST")
    assert [tags(p).get("http.request.resend_count") for p in posts] == [None, 1, 2]
    (chat,) = spans_named(trace, CHAT)
    assert tags(chat)["otel.status_code"] == "ERROR"
    assert tags(chat)["error.type"] == "RetryExhausted"
    events = span_events(chat)
    assert [name for name, _ in events] == [
        "pixel_llm.retry",
        "pixel_llm.retry",
        "pixel_llm.circuit_breaker.state_change",
        "exception",
    ]
    retries = [(e["pixel_llm.retry.attempt"], e["pixel_llm.retry.delay_s"]) for _, e in events[:2]]
    assert retries == [(1, 0.01), (2, 0.02)]
    assert events[2][1] == {
        "pixel_llm.circuit_breaker.name": "e2e-main",
        "pixel_llm.circuit_breaker.from_state": "closed",
        "pixel_llm.circuit_breaker.to_state": "open",
        "pixel_llm.circuit_breaker.reason": "consecutive_failures",
    }
    generate = root(trace)
    assert "otel.status_code" not in tags(generate)
    assert tags(generate)["pixel_llm.fallback.strategy"] == "cache"
    assert span_events(generate) == [
        (
            "pixel_llm.fallback",
            {
                "pixel_llm.fallback.strategy": "cache",
                "pixel_llm.fallback.result": "served",
                "error.type": "RetryExhausted",
            },
        )
    ]


def test_rejected_call_has_rejection_and_fallback_chain(
    chaos_run: ChaosRun, e2e_stack: Stack
) -> None:
    """Breaker open: no POST, a rejected event, cache (empty) then default (served) fallback."""
    trace = trace_of(e2e_stack, chaos_run, "rejected", min_spans=3)
    (chat,) = spans_named(trace, CHAT)
    assert span_events(chat)[0] == (
        "pixel_llm.circuit_breaker.rejected",
        {"pixel_llm.circuit_breaker.name": "e2e-main", "pixel_llm.circuit_breaker.state": "open"},
    )
    assert tags(chat)["error.type"] == "CircuitBreakerOpen"
    fallbacks = [
        (e["pixel_llm.fallback.strategy"], e["pixel_llm.fallback.result"], e["error.type"])
        for name, e in span_events(root(trace))
        if name == "pixel_llm.fallback"
    ]
    assert fallbacks == [
        ("cache", "empty", "CircuitBreakerOpen"),
        ("default", "served", "CircuitBreakerOpen"),
    ]


def test_probe_call_closes_breaker(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """After the cooldown the next call is the half-open probe: open -> half_open -> closed."""
    trace = trace_of(e2e_stack, chaos_run, "probe", min_spans=4)
    transitions = [
        (e["pixel_llm.circuit_breaker.from_state"], e["pixel_llm.circuit_breaker.to_state"])
        for span in trace["spans"]
        for name, e in span_events(span)
        if name == "pixel_llm.circuit_breaker.state_change"
    ]
    assert transitions == [("open", "half_open"), ("half_open", "closed")]


def test_failed_call_is_an_error_trace(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """No fallback: the generate span itself is ERROR with error.type and outcome error."""
    trace = trace_of(e2e_stack, chaos_run, "error", min_spans=6)
    generate_tags = tags(root(trace))
    assert generate_tags["otel.status_code"] == "ERROR"
    assert generate_tags["error.type"] == "RetryExhausted"
    assert generate_tags["pixel_llm.outcome"] == "error"


# --- (b) metrics --------------------------------------------------------------------------------


#: Contract metrics a healthy chaos run does not produce, and where they are checked instead.
_COMING = "emitted only with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_inference[/dup]: "
_COMING += "tests/e2e/test_e2e_content_and_zero_code.py::test_coming_names_*"
NOT_IN_A_HEALTHY_RUN = {
    "pixel_llm_telemetry_dropped_total": "telemetry lost: tests/e2e/test_e2e_collector_kill.py",
    "gen_ai_client_inference_duration_seconds": _COMING,
    "gen_ai_client_inference_usage_input_tokens_total": _COMING,
    "gen_ai_client_inference_usage_output_tokens_total": _COMING,
    "gen_ai_client_inference_usage_cache_read_input_tokens_total": _COMING,
    "gen_ai_client_inference_usage_reasoning_output_tokens_total": _COMING,
}


def test_label_table_covers_the_contract() -> None:
    """This suite checks exactly the metrics of the telemetry contract's Prometheus column
    (less those a healthy default-mode run does not produce, checked where they are caused)."""
    assert set(CONTRACT_LABELS) | set(NOT_IN_A_HEALTHY_RUN) == contract_prometheus_names()


@pytest.mark.parametrize(
    "name",
    sorted(CONTRACT_LABELS),
)
def test_contract_metric_in_prometheus_with_labels(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float, name: str
) -> None:
    """Every contract metric is in Prometheus for the run's job, with every contract label."""
    found = series(e2e_stack, name, chaos_run.service, settled)
    assert found, f"no series of {name} for job {chaos_run.service}"
    labels = set().union(*(set(s) for s in found))
    missing = CONTRACT_LABELS[name] - labels
    assert not missing, f"{name} lacks labels {sorted(missing)}; has {sorted(labels)}"
    if name in HISTOGRAMS:
        suffixes = {s["__name__"].removeprefix(name) for s in found}
        assert suffixes == {"_bucket", "_count", "_sum"}
    values = {v for s in found for k, v in s.items() if k not in ("__name__", "job", "instance")}
    assert not any(chaos_run.prompt in v or chaos_run.api_key in v for v in values)


def test_request_counts_match_what_callers_got(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float
) -> None:
    """pixel_llm_generate_requests_total by outcome equals the results the story's callers got."""
    job = chaos_run.service
    got = values_by(
        e2e_stack,
        f'sum by (pixel_llm_outcome) (pixel_llm_generate_requests_total{{job="{job}"}})',
        settled,
        "pixel_llm_outcome",
    )
    assert got == {(k,): float(v) for k, v in chaos_run.outcomes.items()}
    errors = values_by(
        e2e_stack,
        f'pixel_llm_generate_requests_total{{job="{job}", pixel_llm_outcome="error"}}',
        settled,
        "error_type",
    )
    assert errors == {("RetryExhausted",): 2.0, ("StreamInterrupted",): 2.0}


def test_breaker_transitions_and_rejections_follow_the_story(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float
) -> None:
    """The main breaker: one transition of each kind and one rejection."""
    job, name = chaos_run.service, 'pixel_llm_circuit_breaker_name="e2e-main"'
    transitions = values_by(
        e2e_stack,
        f'pixel_llm_circuit_breaker_transitions_total{{job="{job}", {name}}}',
        settled,
        "pixel_llm_circuit_breaker_from_state",
        "pixel_llm_circuit_breaker_to_state",
    )
    assert transitions == {
        ("closed", "open"): 1.0,
        ("open", "half_open"): 1.0,
        ("half_open", "closed"): 1.0,
    }
    rejected = query_at(
        e2e_stack, f'pixel_llm_circuit_breaker_rejected_total{{job="{job}", {name}}}', settled
    )
    assert [float(r["value"][1]) for r in rejected] == [1.0]


def test_breaker_state_gauge_ends_closed(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float
) -> None:
    """The state gauge of the main breaker: 1 for closed, 0 for open and half_open at the end."""
    state = values_by(
        e2e_stack,
        f'pixel_llm_circuit_breaker_state{{job="{chaos_run.service}", '
        'pixel_llm_circuit_breaker_name="e2e-main"}',
        settled,
        "pixel_llm_circuit_breaker_state",
    )
    assert state == {("closed",): 1.0, ("open",): 0.0, ("half_open",): 0.0}


def test_retry_fallback_and_encoder_metrics(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float
) -> None:
    """Retries by error code, fallbacks by strategy/result, one encoder pass per call."""
    job = chaos_run.service
    retries = values_by(
        e2e_stack,
        f'sum by (pixel_llm_error_code) (pixel_llm_retry_attempts_total{{job="{job}"}})',
        settled,
        "pixel_llm_error_code",
    )
    assert retries[("ERR_HTTP_UNAVAILABLE",)] >= 5  # retried 1 + exhausted 2 + error 2
    assert retries[("ERR_RESPONSE_MALFORMED",)] >= 2
    fallbacks = values_by(
        e2e_stack,
        f'pixel_llm_fallback_invocations_total{{job="{job}"}}',
        settled,
        "pixel_llm_fallback_strategy",
        "pixel_llm_fallback_result",
    )
    for key in [("cache", "served"), ("cache", "empty"), ("default", "served")]:
        assert fallbacks.get(key, 0) >= 1, (key, fallbacks)
    encodes = query_at(
        e2e_stack, f'sum(pixel_llm_encoder_duration_seconds_count{{job="{job}"}})', settled
    )
    assert float(encodes[0]["value"][1]) == chaos_run.calls
    tokens = values_by(
        e2e_stack,
        f'sum by (gen_ai_token_type) (gen_ai_client_token_usage_count{{job="{job}"}})',
        settled,
        "gen_ai_token_type",
    )
    assert set(tokens) == {("input",), ("output",)}


# --- (c) dashboards -----------------------------------------------------------------------------


PANEL_QUERIES = [pytest.param(q, id=q.name) for q in iter_all_panel_queries()]


@pytest.mark.parametrize("query", PANEL_QUERIES)
def test_dashboard_panel_returns_data(
    chaos_run: ChaosRun, e2e_stack: Stack, settled: float, query: PanelQuery
) -> None:
    """The panel's PromQL for the run's service and model returns at least one finite value."""
    promql = render(query.expr, {"service": chaos_run.service, "model": MODEL})
    result = query_at(e2e_stack, promql, settled)
    assert result, f"{query.name}: no data for {promql}"
    numbers = [float(r["value"][1]) for r in result]
    assert any(math.isfinite(v) for v in numbers), f"{query.name}: only {numbers} for {promql}"


# --- (f) content and secrets --------------------------------------------------------------------


def test_no_prompt_or_key_reaches_the_collector(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """Capture off: no prompt or API key in the collector's debug output or in Jaeger's spans."""
    last = chaos_run.trace_id("healthy-end")
    log = e2e_stack.collector.log_path
    wait_until(lambda: last in log.read_text(errors="replace"), timeout=30, what="debug output")
    text = log.read_text(errors="replace")
    assert chaos_run.trace_id("retried") in text  # the output does show the run's spans
    assert chaos_run.prompt not in text
    assert chaos_run.api_key not in text
    assert e2e_stack.jaeger is not None
    jaeger = e2e_stack.jaeger

    def every_trace() -> list[dict[str, Any]] | None:
        found = jaeger.find_traces(chaos_run.service, limit=500)
        return found if len(found) == chaos_run.calls else None

    traces = wait_until(every_trace, timeout=30, what="every trace of the run in Jaeger")
    for trace in traces:
        assert not contains(trace, chaos_run.prompt)
        assert not contains(trace, chaos_run.api_key)
        for span in trace["spans"]:
            assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(tags(span))


def test_pipeline_log_records_reach_the_collector(chaos_run: ChaosRun, e2e_stack: Stack) -> None:
    """The degraded/failed-call log records are exported over OTLP with their trace ids."""
    log = e2e_stack.collector.log_path
    wait_until(
        lambda: chaos_run.trace_id("healthy-end") in log.read_text(errors="replace"),
        timeout=30,
        what="debug output",
    )
    text = log.read_text(errors="replace")
    records = text.split("LogRecord #")[1:]
    assert any(chaos_run.trace_id("exhausted") in record[:3000] for record in records)
