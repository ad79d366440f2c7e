"""The two-tier collector fleet for tests: agent -> 2 tail-sampling gateways -> Jaeger (Badger),
Prometheus scraping every collector, and an Alertmanager pair clustered by gossip.

Every process is started from the repository's fleet configs (collector/fleet/,
collector/jaeger/config-badger.yaml, collector/prometheus/prometheus-fleet.yml) with its endpoints
moved to free loopback ports, through the same classes as the single-collector stack:

    with Fleet(FleetOptions(healthy_percent=30), workdir) as fleet:
        env = fleet.otel_env("my-service")        # applications talk to the agent
        fleet.gateways[1].kill(); fleet.gateways[1].restart()
        exported_trace_ids(fleet.gateways[0])      # what a gateway sent on (debug exporter)

Independent of pixel_llm_otel and of pytest (fixture: `fleet_factory` in stack_fixtures.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import yaml

from .procs import ManagedProcess, ProcessGroup, free_ports, http_get
from .stack import (
    FLEET_AGENT_CONFIG,
    FLEET_GATEWAY_CONFIG,
    JAEGER_BADGER_CONFIG,
    PROMETHEUS_FLEET_CONFIG,
    Alertmanager,
    Collector,
    Jaeger,
    Prometheus,
    load_prometheus_config,
    otel_env,
    render_alertmanager_config,
)

GATEWAY_NAMES = ("gateway-a", "gateway-b")  # prometheus-fleet.yml and compose have these two

# The addresses prometheus-fleet.yml names, in the order of Fleet._prometheus_addresses().
FLEET_PROMETHEUS_ADDRESSES = (
    "127.0.0.1:8888",  # agent, own metrics
    "127.0.0.1:8989",  # gateway-a, prometheus exporter
    "127.0.0.1:8988",  # gateway-a, own metrics
    "127.0.0.1:8991",  # gateway-b, prometheus exporter
    "127.0.0.1:8990",  # gateway-b, own metrics
    "127.0.0.1:14269",  # Jaeger, own metrics
    "127.0.0.1:9093",  # alertmanager-a
    "127.0.0.1:9095",  # alertmanager-b
    "127.0.0.1:9090",  # Prometheus itself
)


@dataclass(frozen=True)
class FleetOptions:
    """What to run and how; the defaults suit a fast test (decisions within seconds, 1 s
    scrapes, span metrics flushed every second, peers 2 s apart)."""

    healthy_percent: float = 10.0  # OTELCOL_TAIL_HEALTHY_PERCENT of the gateways
    decision_wait: str = "4s"
    decision_after_root: str = "500ms"
    span_metrics_flush: str = "1s"
    backend_retry_max: str = "60s"  # agent: retry a down gateway in the call this long
    debug_verbosity: str = "detailed"  # gateways: exported_trace_ids() reads it
    agent_env: Mapping[str, str] = field(default_factory=dict)
    gateway_env: Mapping[str, str] = field(default_factory=dict)
    with_prometheus: bool = True
    with_alertmanagers: bool = True
    rule_files: Sequence[str | Path] | None = None  # None: the canonical rules/*.yml
    alert_webhook_url: str | None = None
    alertmanager_group_wait: str | None = "1s"
    peer_timeout: str = "2s"  # Alertmanager: how long the second peer waits for the first
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    ready_timeout: float = 60.0


class Fleet(ProcessGroup):
    """Jaeger, gateways, agent, Alertmanager pair, Prometheus: started in that order."""

    def __init__(self, options: FleetOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.jaeger = Jaeger(
            workdir, JAEGER_BADGER_CONFIG, {"JAEGER_BADGER_DIR": str(workdir / "jaeger-badger")}
        )
        gateway_env = {
            "OTELCOL_TAIL_HEALTHY_PERCENT": str(options.healthy_percent),
            "OTELCOL_TAIL_DECISION_WAIT": options.decision_wait,
            "OTELCOL_TAIL_DECISION_AFTER_ROOT": options.decision_after_root,
            "OTELCOL_DEBUG_VERBOSITY": options.debug_verbosity,
            **options.gateway_env,
        }
        self.gateways = [
            Collector(
                workdir,
                FLEET_GATEWAY_CONFIG,
                self.jaeger.otlp_grpc_target,
                gateway_env,
                name=name,
            )
            for name in GATEWAY_NAMES
        ]
        self.queue_dir = workdir / "agent-queue"
        self.queue_dir.mkdir(exist_ok=True)
        endpoints = ", ".join(f"127.0.0.1:{g.otlp_grpc_port}" for g in self.gateways)
        self.agent = Collector(
            workdir,
            FLEET_AGENT_CONFIG,
            self.jaeger.otlp_grpc_target,  # not read by the agent's config
            {
                "OTELCOL_GATEWAYS": f"[{endpoints}]",
                "OTELCOL_QUEUE_DIR": str(self.queue_dir),
                "OTELCOL_SPAN_METRICS_FLUSH": options.span_metrics_flush,
                "OTELCOL_LB_BACKEND_RETRY_MAX": options.backend_retry_max,
                **options.agent_env,
            },
            name="agent",
        )
        self.alertmanagers: list[Alertmanager] = []
        if options.with_alertmanagers:
            config = render_alertmanager_config(
                workdir / "alertmanager.yml",
                webhook_url=options.alert_webhook_url,
                group_wait=options.alertmanager_group_wait,
            )
            cluster_ports = free_ports(2)
            for i, name in enumerate(("alertmanager-a", "alertmanager-b")):
                peers = [f"127.0.0.1:{p}" for j, p in enumerate(cluster_ports) if j != i]
                self.alertmanagers.append(
                    Alertmanager(
                        workdir,
                        config,
                        name=name,
                        cluster_port=cluster_ports[i],
                        peers=peers,
                        peer_timeout=options.peer_timeout,
                    )
                )
        self.prometheus: Prometheus | None = None
        if options.with_prometheus:
            self.prometheus = Prometheus(workdir, workdir / "prometheus.yml")
            render_fleet_prometheus_config(
                self.prometheus.config,
                addresses=dict(
                    zip(FLEET_PROMETHEUS_ADDRESSES, self._prometheus_addresses(), strict=True)
                ),
                rule_files=options.rule_files,
                scrape_interval=options.scrape_interval,
                evaluation_interval=options.evaluation_interval,
                with_alertmanagers=bool(self.alertmanagers),
            )

    def _prometheus_addresses(self) -> list[str]:
        a, b = self.gateways
        unused = "127.0.0.1:1"  # no Alertmanager: prometheus-fleet's targets are dropped
        managers = [m.target for m in self.alertmanagers] or [unused, unused]
        prometheus = self.prometheus.target if self.prometheus else unused
        return [
            self.agent.metrics_target,
            a.exporter_target,
            a.metrics_target,
            b.exporter_target,
            b.metrics_target,
            self.jaeger.metrics_target,
            *managers,
            prometheus,
        ]

    @property
    def collectors(self) -> list[Collector]:
        return [*self.gateways, self.agent]

    @property
    def processes(self) -> list[ManagedProcess]:
        """In start order."""
        tail: list[ManagedProcess] = [*self.alertmanagers]
        if self.prometheus is not None:
            tail.append(self.prometheus)
        return [self.jaeger, *self.gateways, self.agent, *tail]

    def otel_env(
        self, service_name: str = "pixel-llm", *, protocol: str = "grpc"
    ) -> dict[str, str]:
        """OTEL_* variables that point an OpenTelemetry SDK at the agent."""
        return otel_env(self.agent, service_name, protocol=protocol)


def render_fleet_prometheus_config(
    out: Path,
    *,
    addresses: Mapping[str, str],
    rule_files: Sequence[str | Path] | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
    with_alertmanagers: bool = True,
) -> Path:
    """Copy prometheus-fleet.yml with every address replaced through `addresses` (each one the
    file names must be there: a new target in the file fails here, not silently), absolute rule
    file paths, and optionally shorter intervals."""
    cfg = load_prometheus_config(
        PROMETHEUS_FLEET_CONFIG, rule_files, scrape_interval, evaluation_interval
    )

    def move(targets: list[str]) -> list[str]:
        missing = [t for t in targets if t not in addresses]
        if missing:
            raise KeyError(f"{PROMETHEUS_FLEET_CONFIG.name} names unknown targets {missing}")
        return [addresses[t] for t in targets]

    for job in cfg["scrape_configs"]:
        if scrape_interval:
            job["scrape_interval"] = scrape_interval
        for group in job["static_configs"]:
            group["targets"] = move(group["targets"])
    if with_alertmanagers:
        for manager in cfg["alerting"]["alertmanagers"]:
            for group in manager["static_configs"]:
                group["targets"] = move(group["targets"])
    else:
        cfg.pop("alerting", None)
        cfg["scrape_configs"] = [
            j for j in cfg["scrape_configs"] if j["job_name"] != "alertmanager"
        ]
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


# --- reading what the fleet did -----------------------------------------------------------------

_BLOCK = re.compile(
    r"^(ResourceSpans|ScopeSpans|Span|ResourceLog|ScopeLogs|LogRecord|ResourceMetrics|Metric) #\d+"
)
_TRACE_ID = re.compile(r"^\s*Trace ID\s*: ([0-9a-f]{32})\s*$")
_SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def exported_trace_ids(gateway: Collector) -> Counter[str]:
    """{trace id: spans} a gateway's debug exporter (verbosity detailed) printed: the spans it
    sent on to Jaeger after tail sampling, over all its runs (the log is appended to)."""
    found: Counter[str] = Counter()
    block = ""
    for line in gateway.log_path.read_text(errors="replace").splitlines():
        header = _BLOCK.match(line.split("\t")[-1].strip())
        if header:
            block = header.group(1)
        elif block == "Span" and (match := _TRACE_ID.match(line)):
            found[match.group(1)] += 1
    return found


def metric_sum(target: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` (exactly, or with `_total`) at http://target/metrics
    whose labels include `labels`; 0.0 when there is none."""
    status, body = http_get(f"http://{target}/metrics")
    if status != 200:
        raise OSError(f"GET http://{target}/metrics -> {status}")
    total = 0.0
    for match in _SAMPLE_LINE.finditer(body.decode(errors="replace")):
        metric, raw_labels, value = match.groups()
        if metric not in (name, f"{name}_total"):
            continue
        found = dict(_LABEL.findall(raw_labels or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


# --- the gateways' probabilistic policy, predicted ------------------------------------------------

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_TAIL_SAMPLING_SALT = b"default-hash-seed"  # tailsamplingprocessor's default hash_salt


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bit (Go's hash/fnv New64a)."""
    value = _FNV64_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


def probabilistic_keeps(trace_id: str, percent: float) -> bool:
    """Whether the tail_sampling `probabilistic` policy (default salt, no OTel tracestate) keeps
    trace `trace_id` (32 hex digits) at `percent`: FNV-1a(salt + id bytes) <= percent% of 2^64-1,
    as tailsamplingprocessor v0.161.0's internal/sampling/probabilistic.go computes it."""
    threshold = int((2**64 - 1) * Fraction(percent / 100))  # Go: float64 ratio
    return fnv1a_64(_TAIL_SAMPLING_SALT + bytes.fromhex(trace_id)) <= threshold
