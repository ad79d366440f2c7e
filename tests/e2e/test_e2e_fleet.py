"""End to end, the two-tier fleet (docs/scaling.md): host apps -> agent (load_balancing by trace
ID, persistent queue) -> two tail-sampling gateways -> Jaeger (Badger); Prometheus scraping every
collector; an Alertmanager pair.

- every trace is decided on exactly one gateway and arrives whole; every degraded trace is kept,
  and exactly the healthy traces the probabilistic policy's hash picks (computed here) are kept;
  span metrics count every call, sampled out or not;
- a gateway killed while apps send, then the agent SIGKILLed: after both restart, every trace
  that was queued arrives; the gateway-down alert reaches the webhook once from the pair;
- Jaeger restarted: its traces are still there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _support.clients import WebhookReceiver
from _support.fleet import (
    Fleet,
    FleetOptions,
    exported_trace_ids,
    metric_sum,
    probabilistic_keeps,
)
from _support.procs import StackError, wait_until
from _support.stack import Collector
from e2e_support import AppProcess, app_args, root, unique

from pixel_llm_otel.sim import FaultKind, FaultSpec, start_in_thread

pytestmark = pytest.mark.e2e

HEALTHY_PERCENT = 30.0
APPS = 3
CALLS_PER_APP = 20
FLEET_RULES = Path(__file__).resolve().with_name("fleet_rules.yml")
DECIDED = "otelcol_processor_tail_sampling_global_count_traces_sampled"
NEW_TRACES = "otelcol_processor_tail_sampling_new_trace_id_received"


@pytest.fixture(scope="module")
def fleet_webhook() -> Iterator[WebhookReceiver]:
    """The module's Alertmanager webhook receiver."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet], fleet_webhook: WebhookReceiver) -> Iterator[Fleet]:
    """One fleet for the module (stopped at its end): 30% of healthy traces kept, the e2e
    gateway-down alert."""
    fleet = fleet_factory(
        FleetOptions(
            healthy_percent=HEALTHY_PERCENT,
            rule_files=("rules/*.yml", str(FLEET_RULES)),
            alert_webhook_url=fleet_webhook.url,
        ),
        name="fleet",
    )
    yield fleet
    fleet.stop()


def run_apps(
    fleet: Fleet,
    start_app: Callable[..., AppProcess],
    spec: FaultSpec,
    *,
    service: str,
    apps: int,
    calls: int,
) -> list[dict[str, Any]]:
    """`apps` host-app processes (one service, one instance id each) make `calls` calls each
    against a simulator misbehaving as `spec`; returns every call record once all exited."""
    with start_in_thread(scenario=spec, seed=21) as sim:
        running = [
            start_app(
                f"{service}-{i}",
                app_args(sim.base_url, calls=calls, breaker_name=f"{service}-{i}"),
                {
                    **fleet.otel_env(service),
                    "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={service}-{i}",
                },
            )
            for i in range(apps)
        ]
        for app in running:
            done = app.finish(timeout=120)
            dropped = done["dropped"]  # the agent took everything: nothing dropped or failed
            counts = (dropped["spans"], dropped["logs"], dropped.get("export_failed", 0))
            assert counts == (0, 0, 0), done
    records = [c for app in running for c in app.calls()]
    assert all(c["error"] is None for c in records), records
    assert len({c["trace_id"] for c in records}) == apps * calls
    return records


def healthy(call: dict[str, Any]) -> bool:
    """Answered by the LLM at the first attempt: only the probabilistic policy keeps it."""
    return bool(call["source"] == "llm" and call["attempts"] == 1)


def decided(gateways: list[Collector]) -> list[float]:
    return [metric_sum(g.metrics_target, DECIDED) for g in gateways]


def whole(trace: dict[str, Any]) -> bool:
    """One root, pixel_llm.generate, and no span whose parent is missing."""
    ids = {s["spanID"] for s in trace["spans"]}
    roots = [s for s in trace["spans"] if not s.get("references")]
    parents = {
        r["spanID"]
        for s in trace["spans"]
        for r in s.get("references", [])
        if r["refType"] == "CHILD_OF"
    }
    return [s["operationName"] for s in roots] == ["pixel_llm.generate"] and parents <= ids


def assert_whole_in_jaeger(fleet: Fleet, trace_id: str, spans: int | None = None) -> None:
    """The trace becomes whole in Jaeger (see `whole`), with exactly `spans` spans when given.
    Its spans may arrive in several requests (children end, and are exported, before their
    root), so a partial trace is waited on, not failed."""

    def probe() -> dict[str, Any] | None:
        trace = fleet.jaeger.trace(trace_id)
        if trace is None or not whole(trace) or len(trace["spans"]) < (spans or 0):
            return None
        return trace

    try:
        trace = wait_until(probe, timeout=30, what=f"trace {trace_id} whole in Jaeger")
    except StackError as exc:
        raise AssertionError(f"{exc}: {fleet.jaeger.trace(trace_id)}") from exc
    assert root(trace)["operationName"] == "pixel_llm.generate", trace_id
    if spans is not None:
        assert len({s["spanID"] for s in trace["spans"]}) == spans, trace_id


@pytest.mark.timeout(300)
def test_traces_are_routed_whole_and_sampled_as_configured(
    fleet: Fleet, start_app: Callable[..., AppProcess]
) -> None:
    """Each trace is decided on one gateway, kept whole; degraded all kept, healthy as hashed."""
    gateways = fleet.gateways
    before = decided(gateways)
    new_before = sum(metric_sum(g.metrics_target, NEW_TRACES) for g in gateways)
    service = unique("fleet-mixed")
    spec = FaultSpec(name="fleet-mixed", rates={FaultKind.HTTP_500: 0.3})
    calls = run_apps(fleet, start_app, spec, service=service, apps=APPS, calls=CALLS_PER_APP)
    traces = {c["trace_id"] for c in calls}

    # every trace is decided exactly once over both gateways: a split trace is decided twice
    def all_decided() -> list[float] | None:
        now = decided(gateways)
        return now if sum(now) - sum(before) >= len(traces) else None

    after = wait_until(all_decided, timeout=60, what=f"{len(traces)} tail-sampling decisions")
    per_gateway = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(per_gateway) == len(traces), per_gateway
    assert all(n > 0 for n in per_gateway), per_gateway  # both gateways got a share
    new_traces = sum(metric_sum(g.metrics_target, NEW_TRACES) for g in gateways) - new_before
    assert new_traces == len(traces)

    degraded = {c["trace_id"] for c in calls if not healthy(c)}
    fine = traces - degraded
    hashed = {t for t in fine if probabilistic_keeps(t, HEALTHY_PERCENT)}

    # which gateway sent which trace on (debug exporter): never two for one trace. A decision is
    # counted before the kept trace leaves the gateway's exporter, so wait (with a deadline) for
    # the expected ones to be written; a trace the sampler really dropped still fails below.
    def exported_now() -> list[Any] | None:
        now = [exported_trace_ids(g) for g in gateways]
        return now if (degraded | hashed) <= set().union(*now) else None

    try:
        exported = wait_until(exported_now, timeout=30, what="kept traces exported")
    except StackError:
        exported = [exported_trace_ids(g) for g in gateways]
    owners = {t: [i for i, e in enumerate(exported) if t in e] for t in traces}
    assert all(len(o) <= 1 for o in owners.values()), {
        t: o for t, o in owners.items() if len(o) > 1
    }
    kept = {t for t, o in owners.items() if o}
    assert degraded, "the simulator's 30% of 500s produced no retried call"
    assert degraded <= kept, sorted(degraded - kept)
    assert kept & fine == hashed, (sorted((kept & fine) ^ hashed), len(fine))
    assert 0 < len(hashed) < len(fine), (len(hashed), len(fine))

    for trace_id in sorted(kept):
        owner = exported[owners[trace_id][0]]
        assert_whole_in_jaeger(fleet, trace_id, spans=owner[trace_id])
    for trace_id in sorted(fine - hashed)[:5]:  # sampled out: not in Jaeger
        assert fleet.jaeger.trace(trace_id) is None, trace_id

    # span metrics (agent, before sampling) count every call, the sampled-out ones too
    prom = fleet.prometheus
    assert prom is not None
    query = (
        f'sum(traces_span_metrics_calls_total{{job="{service}",span_name="pixel_llm.generate"}})'
    )
    wait_until(
        lambda: [r for r in prom.query(query) if float(r["value"][1]) == len(traces)] or None,
        timeout=45,
        what=f"{len(traces)} pixel_llm.generate calls in span metrics ({query})",
    )


@dataclass(frozen=True)
class OutageRun:
    """What happened while gateway-b was down (see the `gateway_outage` fixture)."""

    trace_ids: list[str]
    missing_while_down: list[str]  # not in Jaeger before the restarts
    down_targets: set[str]  # gateway-b's scrape targets
    firing: dict[tuple[str, str], int]  # (job, instance) -> firing notifications of the alert


def firing_notifications(webhook: WebhookReceiver, targets: set[str]) -> dict[tuple[str, str], int]:
    """How many notifications carried a firing PixelLLMCollectorDown for each of `targets`."""
    counts: dict[tuple[str, str], int] = {}
    for alert in webhook.alerts("firing"):
        labels = alert.get("labels", {})
        if labels.get("alertname") == "PixelLLMCollectorDown" and labels.get("instance") in targets:
            key = (labels["job"], labels["instance"])
            counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture(scope="module")
def gateway_outage(
    fleet: Fleet, fleet_webhook: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> OutageRun:
    """gateway-b SIGKILLed; an app sends 16 traces (all degraded, so all kept); the gateway-down
    alert fires and the Alertmanager pair has flushed it twice each; then the agent is SIGKILLed
    (its queue now only on disk), restarted, and gateway-b restarted."""
    gateway = fleet.gateways[1]
    down_targets = {gateway.metrics_target, gateway.exporter_target}
    gateway.kill()
    service = unique("fleet-outage")
    apps: list[AppProcess] = []
    log_dir = tmp_path_factory.mktemp("fleet-outage-apps")

    def start(name: str, args: list[str], env: dict[str, str]) -> AppProcess:
        app = AppProcess(name, args, env, log_dir)
        apps.append(app)
        return app.start()

    try:
        spec = FaultSpec(name="fleet-down-llm", rates={FaultKind.HTTP_500: 1.0})
        calls = run_apps(fleet, start, spec, service=service, apps=1, calls=16)
    finally:
        for app in apps:
            app.kill()
    trace_ids = [c["trace_id"] for c in calls]
    missing = [t for t in trace_ids if fleet.jaeger.trace(t) is None]

    # the alert fired; each Alertmanager ran its notification pipeline for both alert groups
    # (the gateway's two scrape jobs) at least twice (3 flushes x 2 groups: the groups tick
    # together every second), so the second peer's first, deduplicating flush of each group is
    # over and anything it would have sent has arrived
    wait_until(
        lambda: len(firing_notifications(fleet_webhook, down_targets)) == 2,
        timeout=60,
        what="PixelLLMCollectorDown for both of gateway-b's targets at the webhook",
    )
    wait_until(
        lambda: all(
            metric_sum(m.target, "alertmanager_nflog_queries") >= 6 for m in fleet.alertmanagers
        ),
        timeout=60,
        what="two notification flushes of both groups on both Alertmanagers",
    )
    firing = firing_notifications(fleet_webhook, down_targets)

    fleet.agent.kill()  # SIGKILL: what it queued for gateway-b is only on disk now
    fleet.agent.restart()
    gateway.restart()
    return OutageRun(trace_ids, missing, down_targets, firing)


@pytest.mark.timeout(300)
def test_traces_queued_for_a_dead_gateway_survive_an_agent_crash(
    fleet: Fleet, gateway_outage: OutageRun
) -> None:
    """Traces sent while a gateway was down, through an agent SIGKILLed since, all arrive."""
    assert gateway_outage.missing_while_down, "no trace was held back while gateway-b was down"
    for trace_id in gateway_outage.trace_ids:
        assert_whole_in_jaeger(fleet, trace_id)
    assert fleet.agent.running
    assert all(g.running for g in fleet.gateways)


@pytest.mark.timeout(300)
def test_alertmanager_pair_notifies_once_per_alert(gateway_outage: OutageRun) -> None:
    """The gateway-down alert, sent by Prometheus to both Alertmanagers, is notified once."""
    assert gateway_outage.firing, "no notification at all"
    assert {instance for _, instance in gateway_outage.firing} == gateway_outage.down_targets
    assert set(gateway_outage.firing.values()) == {1}, gateway_outage.firing


@pytest.mark.timeout(300)
def test_jaeger_restart_keeps_traces(fleet: Fleet, gateway_outage: OutageRun) -> None:
    """Jaeger (Badger storage) restarted: the traces it had are still served, whole."""
    for trace_id in gateway_outage.trace_ids:
        fleet.jaeger.wait_for_trace(trace_id, timeout=30)
    counts = {t: len(fleet.jaeger.wait_for_trace(t)["spans"]) for t in gateway_outage.trace_ids}
    fleet.jaeger.restart()
    for trace_id, spans in counts.items():
        trace = fleet.jaeger.trace(trace_id)
        assert trace is not None, trace_id
        assert len(trace["spans"]) == spans, trace_id
