"""The two-tier fleet's config files (collector/fleet/, config-badger.yaml, prometheus-fleet.yml,
the compose profile `fleet`): valid, consistent with each other and with the single-collector
configs they derive from (docs/scaling.md)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.fleet import (
    FLEET_PROMETHEUS_ADDRESSES,
    fnv1a_64,
    probabilistic_keeps,
    render_fleet_prometheus_config,
)
from _support.stack import (
    COLLECTOR_DIR,
    FLEET_AGENT_CONFIG,
    FLEET_GATEWAY_CONFIG,
    OTELCOL_TAILSAMPLING_CONFIG,
    PROMETHEUS_FLEET_CONFIG,
)
from _support.stack_fixtures import require_stack_binaries


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def compose_fleet() -> dict[str, dict[str, Any]]:
    services = load(COLLECTOR_DIR / "docker-compose.yaml")["services"]
    return {name: s for name, s in services.items() if "fleet" in s.get("profiles", [])}


def test_gateway_samples_with_the_tail_sampling_configs_policies() -> None:
    """The gateways' tail_sampling is otelcol-tailsampling.yaml's, unchanged."""
    gateway = load(FLEET_GATEWAY_CONFIG)["processors"]["tail_sampling"]
    single = load(OTELCOL_TAILSAMPLING_CONFIG)["processors"]["tail_sampling"]
    assert gateway == single


def test_span_metrics_are_computed_once_at_the_agent_before_routing() -> None:
    """The agent feeds span_metrics from its unsampled traces pipeline (same dimensions as the
    single collector's); no gateway computes them again."""
    agent = load(FLEET_AGENT_CONFIG)
    single = load(OTELCOL_TAILSAMPLING_CONFIG)["connectors"]["span_metrics"]
    connector = dict(agent["connectors"]["span_metrics"])
    assert connector.pop("metrics_flush_interval") == "${env:OTELCOL_SPAN_METRICS_FLUSH:-15s}"
    assert connector == {k: v for k, v in single.items() if k != "metrics_flush_interval"}
    traces = agent["service"]["pipelines"]["traces"]
    assert "span_metrics" in traces["exporters"]
    assert "tail_sampling" not in traces["processors"]
    assert "span_metrics" in agent["service"]["pipelines"]["metrics"]["receivers"]
    gateway = load(FLEET_GATEWAY_CONFIG)
    assert "connectors" not in gateway
    assert "span_metrics" not in FLEET_GATEWAY_CONFIG.read_text().split("service:")[-1]


def test_agent_routes_traces_by_trace_id_through_a_persistent_queue() -> None:
    """Traces (and logs) go through load_balancing by traceID, metrics by resource; each queue
    is in an enabled file_storage extension, and the per-gateway sub-exporters have no queue."""
    agent = load(FLEET_AGENT_CONFIG)
    pipelines = agent["service"]["pipelines"]
    exporters = agent["exporters"]
    assert pipelines["traces"]["exporters"][-1] == "load_balancing/traces"
    assert pipelines["logs"]["exporters"] == ["load_balancing/traces"]
    assert pipelines["metrics"]["exporters"] == ["load_balancing/metrics"]
    assert exporters["load_balancing/traces"]["routing_key"] == "traceID"
    assert exporters["load_balancing/metrics"]["routing_key"] == "resource"
    for name, exporter in exporters.items():
        assert name.startswith("load_balancing/"), name
        queue = exporter["sending_queue"]
        assert queue["enabled"] is True
        assert queue["storage"] in agent["service"]["extensions"]
        assert queue["storage"].split("/")[0] == "file_storage"
        assert exporter["retry_on_failure"]["max_elapsed_time"] == "0s"
        assert exporter["protocol"]["otlp"]["sending_queue"] == {"enabled": False}
        assert set(exporter["resolver"]) == {"static"}


def test_rendered_fleet_prometheus_config_is_valid(tmp_path: Path) -> None:
    """Every address of prometheus-fleet.yml is moved; promtool accepts the copy and the file."""
    promtool = require_stack_binaries("promtool")["promtool"]
    moved = {a: f"127.0.0.1:{20000 + i}" for i, a in enumerate(FLEET_PROMETHEUS_ADDRESSES)}
    out = render_fleet_prometheus_config(
        tmp_path / "prometheus.yml", addresses=moved, scrape_interval="1s"
    )
    text = out.read_text()
    assert not any(a in text for a in FLEET_PROMETHEUS_ADDRESSES)
    cfg = yaml.safe_load(text)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert len(jobs["otel-collector-exporter"]["static_configs"][0]["targets"]) == 2
    tiers = {
        g["labels"]["tier"]: len(g["targets"]) for g in jobs["otel-collector"]["static_configs"]
    }
    assert tiers == {"agent": 1, "gateway": 2}
    assert len(cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]) == 2
    for config in (PROMETHEUS_FLEET_CONFIG, out):
        result = subprocess.run(
            [str(promtool), "check", "config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_render_refuses_a_target_it_does_not_know(tmp_path: Path) -> None:
    """A target added to prometheus-fleet.yml without a test port fails loudly."""
    partial = dict.fromkeys(FLEET_PROMETHEUS_ADDRESSES[:-1], "127.0.0.1:1")
    with pytest.raises(KeyError, match=r"127\.0\.0\.1:9090"):
        render_fleet_prometheus_config(tmp_path / "p.yml", addresses=partial)


def test_compose_fleet_profile_matches_the_native_fleet() -> None:
    """The compose profile runs the fleet configs with the ports prometheus-fleet.yml scrapes."""
    fleet = compose_fleet()
    assert {
        "fleet-agent",
        "fleet-gateway-a",
        "fleet-gateway-b",
        "fleet-jaeger",
        "fleet-prometheus",
        "fleet-alertmanager-a",
        "fleet-alertmanager-b",
    } <= set(fleet)
    for name, service in fleet.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (COLLECTOR_DIR / source).exists(), (name, source)
    gateways = {n: s for n, s in fleet.items() if n.startswith("fleet-gateway")}
    agent_gateways = yaml.safe_load(fleet["fleet-agent"]["environment"]["OTELCOL_GATEWAYS"])
    grpc = [
        s["environment"].get("OTELCOL_OTLP_GRPC_ENDPOINT", "127.0.0.1:4417")
        for s in gateways.values()
    ]
    assert sorted(agent_gateways) == sorted(grpc)
    assert all("otelcol-gateway.yaml" in s["command"][0] for s in gateways.values())
    assert "otelcol-agent.yaml" in fleet["fleet-agent"]["command"][0]
    assert "config-badger.yaml" in fleet["fleet-jaeger"]["command"][0]
    assert "prometheus-fleet.yml" in " ".join(fleet["fleet-prometheus"]["command"])
    exporters = {
        s["environment"].get("OTELCOL_PROMETHEUS_ENDPOINT", "127.0.0.1:8989")
        for s in gateways.values()
    }
    scraped = load(PROMETHEUS_FLEET_CONFIG)["scrape_configs"][0]["static_configs"][0]["targets"]
    assert exporters == set(scraped)
    peers = {
        name: [a for a in s["command"] if a.startswith("--cluster.")]
        for name, s in fleet.items()
        if name.startswith("fleet-alertmanager")
    }
    listen = {n: a[0].split("=")[1] for n, a in peers.items()}
    for name, args in peers.items():
        assert {a.split("=")[1] for a in args[1:]} == set(listen.values()) - {listen[name]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", 0xCBF29CE484222325), (b"a", 0xAF63DC4C8601EC8C), (b"foobar", 0x85944171F73967E8)],
    ids=["empty", "a", "foobar"],
)
def test_fnv1a_64_matches_the_reference_vectors(data: bytes, expected: int) -> None:
    """The FNV-1a 64 used to predict the probabilistic policy gives the published values."""
    assert fnv1a_64(data) == expected


def test_probabilistic_prediction_keeps_its_share() -> None:
    """0% keeps nothing, 100% keeps all, 30% keeps about 30% of 4,000 random trace ids (the
    SDK's ids are random: FNV-1a of ids differing only in their last bytes is not uniform)."""
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(4000)]
    assert not any(probabilistic_keeps(t, 0.0) for t in ids)
    assert all(probabilistic_keeps(t, 100.0) for t in ids)
    share = sum(probabilistic_keeps(t, 30.0) for t in ids) / len(ids)
    assert 0.27 < share < 0.33, share
