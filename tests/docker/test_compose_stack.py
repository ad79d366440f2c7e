"""The smoke test against the official images: collector/docker-compose.yaml via testcontainers.

Runs only where a Docker engine answers (the daemon is pinged, a docker CLI alone is not enough);
everywhere else the module is skipped with the reason. Host ports are free loopback ports passed
to compose through an env file (the STACK_*_PORT variables of the compose file).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # `_support` lives in tests/, whatever pytest's import mode
    sys.path.insert(0, _TESTS)

from _support.checks import check_generate_trace, check_metrics_and_exemplars  # noqa: E402
from _support.clients import JaegerClient, PrometheusClient  # noqa: E402
from _support.otlp import emit_generate, otel_sdk  # noqa: E402
from _support.procs import free_ports, http_get, wait_until  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "collector"
PORT_VARIABLES = (
    "STACK_OTLP_GRPC_PORT",
    "STACK_OTLP_HTTP_PORT",
    "STACK_COLLECTOR_HEALTH_PORT",
    "STACK_COLLECTOR_METRICS_PORT",
    "STACK_COLLECTOR_EXPORTER_PORT",
    "STACK_JAEGER_PORT",
    "STACK_PROMETHEUS_PORT",
    "STACK_ALERTMANAGER_PORT",
    "STACK_GRAFANA_PORT",
)


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers a ping; otherwise why not."""
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # any failure to reach the daemon means: no engine here
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    return None


@dataclass
class ComposeStack:
    ports: dict[str, int]

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{self.ports[variable]}"


@pytest.fixture(scope="module")
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """docker compose up (official images, the repository's configs) on free host ports."""
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(f"{reason}; the same checks run natively in tests/stack/")
    from testcontainers.compose import DockerCompose

    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    env_file = tmp_path_factory.mktemp("compose") / "ports.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in ports.items()))
    compose = DockerCompose(
        COMPOSE_DIR,
        compose_file_name="docker-compose.yaml",
        env_file=str(env_file),
        pull=True,
        wait=False,
    )
    with compose:
        stack = ComposeStack(ports)
        for variable, path in (
            ("STACK_COLLECTOR_HEALTH_PORT", "/"),
            ("STACK_JAEGER_PORT", "/api/services"),
            ("STACK_PROMETHEUS_PORT", "/-/ready"),
            ("STACK_ALERTMANAGER_PORT", "/-/ready"),
        ):
            url = stack.url(variable) + path
            wait_until(lambda u=url: http_get(u)[0] == 200, timeout=180, what=url)
        yield stack


def test_compose_stack_carries_a_trace_and_metrics(compose_stack: ComposeStack) -> None:
    """Through the official images: the trace reaches Jaeger, the metrics (with exemplars)
    reach Prometheus."""
    service = f"docker-smoke-{uuid.uuid4().hex[:8]}"
    endpoint = compose_stack.url("STACK_OTLP_GRPC_PORT")
    with otel_sdk(endpoint, service, export_interval_ms=600_000) as (tracer, meter):
        trace_id = emit_generate(tracer, meter, event="pixel_llm.retry")
        meter.flush()
        prometheus = PrometheusClient(compose_stack.url("STACK_PROMETHEUS_PORT"))
        assert trace_id in check_metrics_and_exemplars(prometheus, service)
    jaeger = JaegerClient(compose_stack.url("STACK_JAEGER_PORT"))
    check_generate_trace(jaeger, trace_id, service, event="pixel_llm.retry")


def test_compose_prometheus_scrapes_the_collector(compose_stack: ComposeStack) -> None:
    """The canonical prometheus.yml works unchanged in compose (shared network namespace)."""
    prometheus = PrometheusClient(compose_stack.url("STACK_PROMETHEUS_PORT"))
    up = wait_until(
        lambda: (t := prometheus.targets_up()) and all(t.values()) and t,
        timeout=60,
        what="all targets up",
    )
    assert {"otel-collector-exporter", "otel-collector", "jaeger"} <= set(up)
