"""End to end (d): an outage fires the error-budget alert of the short-window e2e rules and it
reaches Alertmanager's webhook, while a healthy service run at the same time stays quiet; and
every loaded rule evaluates cleanly against the live data.

Two host apps in their own processes (configure() from OTEL_* variables), each with its own
simulator and its own service name, so Prometheus sees them as two jobs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from _support.clients import WebhookReceiver
from _support.otlp import emit_generate, otel_sdk
from _support.procs import wait_until
from _support.stack import Stack
from e2e_support import AppProcess, app_args, unique

from pixel_llm_otel.sim import start_in_thread

pytestmark = pytest.mark.e2e

ALERT = "PixelLLMErrorBudgetBurn"


def unix_time(go_time: str) -> float:
    """Prometheus' RFC 3339 timestamp (nanoseconds, Z) as Unix seconds."""
    match = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", go_time)
    assert match, go_time
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + float(f"0.{fraction or 0}")


def webhook_alerts(webhook: WebhookReceiver, job: str) -> list[dict[str, Any]]:
    """Every alert of `job` the webhook received, firing or resolved, any alert name."""
    return [a for a in webhook.alerts() if a.get("labels", {}).get("job") == job]


@pytest.mark.timeout(240)
def test_outage_alert_reaches_webhook_and_healthy_run_stays_quiet(
    e2e_stack: Stack, e2e_webhook: WebhookReceiver, start_app: Callable[..., AppProcess]
) -> None:
    """An outage fires the e2e error-budget alert at the webhook; the healthy job never alerts."""
    prom, manager = e2e_stack.prometheus, e2e_stack.alertmanager
    assert prom is not None
    assert manager is not None
    down, healthy = unique("e2e-outage"), unique("e2e-healthy")
    with start_in_thread(seed=11) as down_sim, start_in_thread(seed=12) as healthy_sim:
        down_sim.start_outage(600.0)  # refused for longer than the test can run
        apps = {
            job: start_app(
                job,
                app_args(sim.base_url, loop=True, pace=0.25, no_fallback=True, breaker_name=job),
                e2e_stack.otel_env(job),
            )
            for job, sim in ((down, down_sim), (healthy, healthy_sim))
        }

        def fired() -> dict[str, Any] | None:
            return next(
                (
                    a
                    for a in webhook_alerts(e2e_webhook, down)
                    if a["status"] == "firing"
                    and a["labels"].get("alertname") == ALERT
                    and a["labels"].get("rules_variant") == "e2e"
                ),
                None,
            )

        alert = apps[down].wait_for(fired, timeout=150, what=f"{ALERT} for {down} at webhook")
        # the rules did evaluate the healthy job, to a zero burn rate
        burn = prom.wait_for(
            f'e2e_job:pixel_llm_generate_error_budget_burn:rate1m{{job="{healthy}"}}'
        )
        assert [float(r["value"][1]) for r in burn] == [0.0]
        ever = f'count_over_time(ALERTS{{job="{healthy}"}}[10m])'
        assert prom.query(ever) == [], "an alert was pending or firing for the healthy job"
        assert webhook_alerts(e2e_webhook, healthy) == []
        in_manager = [a for a in manager.alerts() if a["labels"].get("job") == down]
        assert ALERT in {a["labels"]["alertname"] for a in in_manager}
        done = {job: app.finish() for job, app in apps.items()}
    assert alert["labels"]["severity"] == "page"
    assert alert["annotations"]["runbook_url"].endswith("#pixelllmerrorbudgetburn")
    assert down in alert["annotations"]["summary"]
    down_calls, healthy_calls = apps[down].calls(), apps[healthy].calls()
    assert down_calls
    assert healthy_calls
    assert all(c["error"] is None for c in down_calls + healthy_calls)  # never an exception
    assert {c["source"] for c in down_calls} == {None}  # every outage call failed: no text
    assert {c["source"] for c in healthy_calls} == {"llm"}
    lost = [
        (d["dropped"]["spans"], d["dropped"]["logs"], d["dropped"]["export_failed"])
        for d in done.values()
    ]
    assert set(lost) == {(0, 0, 0)}  # nothing dropped, every export delivered
    assert webhook_alerts(e2e_webhook, healthy) == []


def test_every_rule_evaluates_without_error(e2e_stack: Stack) -> None:
    """Every rule of the canonical and the e2e files evaluates without error on live data."""
    prom = e2e_stack.prometheus
    assert prom is not None
    endpoint = e2e_stack.collector.otlp_grpc_endpoint
    with otel_sdk(endpoint, unique("e2e-rules")) as (tracer, meter):  # the receivers see data
        emit_generate(tracer, meter)
    refused = '{__name__=~"otelcol_receiver_refused_(spans|metric_points).*", job="otel-collector"}'
    wait_until(lambda: len(prom.query(refused)) >= 2, timeout=30, what="the collector's counters")

    since = time.time()

    def evaluated() -> list[dict[str, Any]] | None:
        groups = prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        fresh = all(unix_time(g["lastEvaluation"]) > since for g in groups)
        return rules if rules and fresh else None

    rules = wait_until(evaluated, timeout=30, what="every rule group evaluated")
    bad = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert bad == {}
