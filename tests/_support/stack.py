"""The observability stack for tests: collector, Jaeger, Prometheus, Alertmanager (and Zipkin, on
request: tests/_support/zipkin.py) on free ports.

Each component is started from the repository's own config files (collector/), with every
endpoint moved to a free loopback port: the collector and Jaeger through the environment
variables their configs read, Prometheus and Alertmanager through per-run copies of
collector/prometheus/prometheus.yml and collector/alertmanager/alertmanager.yml.

    with Stack(StackOptions(), workdir) as stack:
        env = stack.otel_env("my-service")      # OTEL_* variables for the application
        stack.prometheus.wait_for("pixel_llm_generate_requests_total")
        stack.jaeger.wait_for_trace(trace_id)

Independent of pixel_llm_otel and of pytest (fixtures: tests/_support/stack_fixtures.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .clients import AlertmanagerAPI, JaegerAPI, PrometheusAPI
from .procs import (
    REPO,
    ManagedProcess,
    ProcessGroup,
    free_ports,
    require_binary,
)
from .zipkin import ZIPKIN_OVERLAY, Zipkin

COLLECTOR_DIR = REPO / "collector"
OTELCOL_CONFIG = COLLECTOR_DIR / "otelcol.yaml"
OTELCOL_TAILSAMPLING_CONFIG = COLLECTOR_DIR / "otelcol-tailsampling.yaml"
FLEET_AGENT_CONFIG = COLLECTOR_DIR / "fleet" / "otelcol-agent.yaml"
FLEET_GATEWAY_CONFIG = COLLECTOR_DIR / "fleet" / "otelcol-gateway.yaml"
JAEGER_CONFIG = COLLECTOR_DIR / "jaeger" / "config.yaml"
JAEGER_BADGER_CONFIG = COLLECTOR_DIR / "jaeger" / "config-badger.yaml"
PROMETHEUS_CONFIG = COLLECTOR_DIR / "prometheus" / "prometheus.yml"
PROMETHEUS_FLEET_CONFIG = COLLECTOR_DIR / "prometheus" / "prometheus-fleet.yml"
ALERTMANAGER_CONFIG = COLLECTOR_DIR / "alertmanager" / "alertmanager.yml"
BUNDLED_COLLECTOR_CONFIGS = (
    OTELCOL_CONFIG,
    OTELCOL_TAILSAMPLING_CONFIG,
    FLEET_AGENT_CONFIG,  # the two-tier fleet (tests/_support/fleet.py, docs/scaling.md)
    FLEET_GATEWAY_CONFIG,
)

# scrape job names of collector/prometheus/prometheus.yml
JOB_EXPORTER = "otel-collector-exporter"
JOB_COLLECTOR = "otel-collector"
JOB_JAEGER = "jaeger"
JOB_PROMETHEUS = "prometheus"


@dataclass(frozen=True)
class StackOptions:
    """What to run and how; the defaults suit a fast test (1 s scrape and rule evaluation)."""

    collector_config: Path = OTELCOL_CONFIG
    collector_env: Mapping[str, str] = field(default_factory=dict)  # e.g. OTELCOL_DEBUG_VERBOSITY
    with_jaeger: bool = True
    with_zipkin: bool = False  # a JVM (~20 s to start): the collector also exports to Zipkin
    with_prometheus: bool = True
    with_alertmanager: bool = True
    rule_files: Sequence[str | Path] | None = None  # None: the canonical rules/*.yml
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    alert_webhook_url: str | None = None  # None: the canonical receiver URL (nobody listens)
    alertmanager_group_wait: str | None = "1s"  # None: as in alertmanager.yml
    ready_timeout: float = 60.0


# --- components -------------------------------------------------------------------------------


class Collector(ManagedProcess):
    """The lean collector (`otelcol`) with one of the bundled configs."""

    def __init__(
        self,
        workdir: Path,
        config: Path,
        jaeger_otlp_grpc: str,
        extra_env: Mapping[str, str] | None = None,
        *,
        name: str = "otelcol",
        overlays: Sequence[Path] = (),
    ) -> None:
        (
            self.otlp_grpc_port,
            self.otlp_http_port,
            self.health_port,
            self.exporter_port,
            self.metrics_port,
        ) = free_ports(5)
        self.config = config
        env = {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.otlp_grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{self.exporter_port}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "OTELCOL_JAEGER_ENDPOINT": jaeger_otlp_grpc,
            **(extra_env or {}),
        }
        super().__init__(
            name=name,
            argv=[
                str(require_binary("otelcol")),
                *(f"--config={c}" for c in (config, *overlays)),
            ],
            log_path=workdir / f"{name}.log",
            ready_url=f"http://127.0.0.1:{self.health_port}/",
            env=env,
        )

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def exporter_target(self) -> str:
        return f"127.0.0.1:{self.exporter_port}"

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"


class Jaeger(ManagedProcess, JaegerAPI):
    """Jaeger v2 (in-memory storage unless `config` says otherwise); tests read the query API."""

    def __init__(
        self,
        workdir: Path,
        config: Path = JAEGER_CONFIG,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        (
            self.otlp_grpc_port,
            self.otlp_http_port,
            self.query_port,
            self.query_grpc_port,
            self.health_port,
            self.metrics_port,
        ) = free_ports(6)
        env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.otlp_grpc_port}",
            "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http_port}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{self.query_port}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{self.query_grpc_port}",
            "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "JAEGER_METRICS_HOST": "127.0.0.1",
            "JAEGER_METRICS_PORT": str(self.metrics_port),
            # Jaeger traces its own queries to OTLP 127.0.0.1:4317 unless told not to sample
            "OTEL_TRACES_SAMPLER": "always_off",
            **(extra_env or {}),
        }
        super().__init__(
            name="jaeger",
            argv=[str(require_binary("jaeger")), f"--config={config}"],
            log_path=workdir / "jaeger.log",
            ready_url=f"http://127.0.0.1:{self.query_port}/api/services",
            env=env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def otlp_grpc_target(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"


class Prometheus(ManagedProcess, PrometheusAPI):
    """Prometheus with a per-run copy of prometheus.yml and exemplar storage on."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.port = free_ports(1)[0]
        self.config = config
        super().__init__(
            name="prometheus",
            argv=[
                str(require_binary("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--enable-feature=exemplar-storage",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
            ],
            log_path=workdir / "prometheus.log",
            ready_url=f"http://127.0.0.1:{self.port}/-/ready",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class Alertmanager(ManagedProcess, AlertmanagerAPI):
    """Alertmanager with a per-run copy of alertmanager.yml; clustering off unless `cluster_port`
    is given (gossip on that loopback port, joining `peers`, host:port each)."""

    def __init__(
        self,
        workdir: Path,
        config: Path,
        *,
        name: str = "alertmanager",
        cluster_port: int | None = None,
        peers: Sequence[str] = (),
        peer_timeout: str | None = None,
    ) -> None:
        self.port = free_ports(1)[0]
        self.config = config
        self.cluster_port = cluster_port
        if cluster_port is None:
            cluster = ["--cluster.listen-address="]  # no gossip port on 0.0.0.0:9094
        else:
            cluster = [f"--cluster.listen-address=127.0.0.1:{cluster_port}"]
            cluster += [f"--cluster.peer={peer}" for peer in peers]
            if peer_timeout:
                cluster.append(f"--cluster.peer-timeout={peer_timeout}")
        super().__init__(
            name=name,
            argv=[
                str(require_binary("alertmanager")),
                f"--config.file={config}",
                f"--storage.path={workdir / f'{name}-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *cluster,
            ],
            log_path=workdir / f"{name}.log",
            ready_url=f"http://127.0.0.1:{self.port}/-/ready",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


# --- configs ----------------------------------------------------------------------------------


def load_prometheus_config(
    path: Path,
    rule_files: Sequence[str | Path] | None,
    scrape_interval: str | None,
    evaluation_interval: str | None,
) -> dict[str, Any]:
    """A Prometheus config file as a dict: rule files (``None``: the file's own) made absolute,
    and the global intervals replaced where given."""
    cfg: dict[str, Any] = yaml.safe_load(path.read_text())
    files = rule_files if rule_files is not None else cfg.get("rule_files", [])
    cfg["rule_files"] = [str(p if Path(p).is_absolute() else path.parent / p) for p in files]
    if scrape_interval:
        cfg["global"]["scrape_interval"] = scrape_interval
    if evaluation_interval:
        cfg["global"]["evaluation_interval"] = evaluation_interval
    return cfg


def render_prometheus_config(
    out: Path,
    *,
    targets: Mapping[str, str],
    alertmanager: str | None,
    rule_files: Sequence[str | Path] | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> Path:
    """Copy prometheus.yml with each job's target from `targets` (jobs not in it are dropped),
    absolute rule file paths, and optionally shorter intervals."""
    cfg = load_prometheus_config(
        PROMETHEUS_CONFIG, rule_files, scrape_interval, evaluation_interval
    )
    jobs = []
    for job in cfg.get("scrape_configs", []):
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            if scrape_interval:
                job["scrape_interval"] = scrape_interval
            jobs.append(job)
    cfg["scrape_configs"] = jobs
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    else:
        cfg.pop("alerting", None)
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def render_alertmanager_config(
    out: Path, *, webhook_url: str | None, group_wait: str | None = None
) -> Path:
    """Copy alertmanager.yml with every webhook pointed at `webhook_url` and short waits."""
    cfg = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    if webhook_url:
        for receiver in cfg.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = webhook_url
    if group_wait:
        cfg["route"]["group_interval"] = group_wait
        for route in [cfg["route"], *cfg["route"].get("routes", [])]:
            route["group_wait"] = group_wait
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


# --- the stack --------------------------------------------------------------------------------


def otel_env(
    collector: Collector, service_name: str = "pixel-llm", *, protocol: str = "grpc"
) -> dict[str, str]:
    """OTEL_* variables that point an OpenTelemetry SDK at `collector`, with short export
    intervals (1 s metrics, 200 ms span batches)."""
    endpoint = collector.otlp_grpc_endpoint if protocol == "grpc" else collector.otlp_http_endpoint
    return {
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if protocol == "grpc" else "http/protobuf",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }


class Stack(ProcessGroup):
    """Jaeger, Zipkin, collector, Alertmanager and Prometheus, started in that order, stopped in
    reverse."""

    def __init__(self, options: StackOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.jaeger: Jaeger | None = Jaeger(workdir) if options.with_jaeger else None
        jaeger_target = (
            self.jaeger.otlp_grpc_target if self.jaeger else f"127.0.0.1:{free_ports(1)[0]}"
        )
        self.zipkin: Zipkin | None = Zipkin(workdir) if options.with_zipkin else None
        collector_env = dict(options.collector_env)
        if self.zipkin is not None:
            collector_env.setdefault("OTELCOL_ZIPKIN_ENDPOINT", self.zipkin.spans_endpoint)
        self.collector = Collector(
            workdir,
            options.collector_config,
            jaeger_target,
            collector_env,
            overlays=(ZIPKIN_OVERLAY,) if self.zipkin is not None else (),
        )
        self.alertmanager: Alertmanager | None = None
        if options.with_alertmanager:
            self.alertmanager = Alertmanager(
                workdir,
                render_alertmanager_config(
                    workdir / "alertmanager.yml",
                    webhook_url=options.alert_webhook_url,
                    group_wait=options.alertmanager_group_wait,
                ),
            )
        self.prometheus: Prometheus | None = None
        if options.with_prometheus:
            prom_port_holder = Prometheus(workdir, workdir / "prometheus.yml")
            targets = {
                JOB_EXPORTER: self.collector.exporter_target,
                JOB_COLLECTOR: self.collector.metrics_target,
                JOB_PROMETHEUS: prom_port_holder.target,
            }
            if self.jaeger:
                targets[JOB_JAEGER] = self.jaeger.metrics_target
            render_prometheus_config(
                prom_port_holder.config,
                targets=targets,
                alertmanager=self.alertmanager.target if self.alertmanager else None,
                rule_files=options.rule_files,
                scrape_interval=options.scrape_interval,
                evaluation_interval=options.evaluation_interval,
            )
            self.prometheus = prom_port_holder

    @property
    def processes(self) -> list[ManagedProcess]:
        """In start order."""
        procs: list[ManagedProcess | None] = [
            self.jaeger,
            self.zipkin,
            self.collector,
            self.alertmanager,
            self.prometheus,
        ]
        return [p for p in procs if p is not None]

    def ready_timeout(self, proc: ManagedProcess) -> float:
        if proc is self.zipkin:  # a JVM on a busy machine takes longer than the Go programs
            return max(self.options.ready_timeout, 180.0)
        return self.options.ready_timeout

    def otel_env(
        self, service_name: str = "pixel-llm", *, protocol: str = "grpc"
    ) -> dict[str, str]:
        """OTEL_* variables that point an OpenTelemetry SDK at this stack's collector."""
        return otel_env(self.collector, service_name, protocol=protocol)
