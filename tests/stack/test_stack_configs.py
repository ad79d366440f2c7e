"""The stack's config files: valid for the programs that read them, and consistent."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from _support.stack import (
    ALERTMANAGER_CONFIG,
    BUNDLED_COLLECTOR_CONFIGS,
    COLLECTOR_DIR,
    JAEGER_BADGER_CONFIG,
    JAEGER_CONFIG,
    OTELCOL_CONFIG,
    OTELCOL_TAILSAMPLING_CONFIG,
    PROMETHEUS_CONFIG,
    render_alertmanager_config,
    render_prometheus_config,
)
from _support.stack_fixtures import require_stack_binaries
from _support.zipkin import ZIPKIN_OVERLAY

COMPONENT_KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
CONFIG_IDS = [p.name for p in BUNDLED_COLLECTOR_CONFIGS]
EXPORTING_CONFIGS = [  # the fleet's agent has no prometheus exporter (its gateways do)
    p
    for p in BUNDLED_COLLECTOR_CONFIGS
    if "prometheus" in yaml.safe_load(p.read_text())["exporters"]
]


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False
    )


def component_types(config: Path) -> dict[str, set[str]]:
    """{kind: {type}} a collector config declares (`otlp_grpc/jaeger` -> `otlp_grpc`)."""
    cfg = yaml.safe_load(config.read_text())
    return {kind: {name.split("/")[0] for name in cfg.get(kind) or {}} for kind in COMPONENT_KINDS}


@pytest.mark.parametrize("config", BUNDLED_COLLECTOR_CONFIGS, ids=CONFIG_IDS)
def test_collector_validates_bundled_config(config: Path) -> None:
    """`otelcol validate` accepts each bundled config, without deprecation warnings."""
    otelcol = require_stack_binaries("otelcol")["otelcol"]
    result = run(otelcol, "validate", f"--config={config}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecat" not in (result.stdout + result.stderr).lower()


@pytest.mark.parametrize(
    "config", [OTELCOL_CONFIG, OTELCOL_TAILSAMPLING_CONFIG], ids=lambda p: p.name
)
def test_collector_validates_config_with_zipkin_overlay(config: Path) -> None:
    """Each single-collector config plus the Zipkin overlay (a second --config) is valid."""
    otelcol = require_stack_binaries("otelcol")["otelcol"]
    result = run(otelcol, "validate", f"--config={config}", f"--config={ZIPKIN_OVERLAY}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecat" not in (result.stdout + result.stderr).lower()


def test_lean_collector_has_exactly_the_components_the_configs_use() -> None:
    """The built distribution's components equal the union of what the bundled configs (and the
    Zipkin overlay) use."""
    otelcol = require_stack_binaries("otelcol")["otelcol"]
    result = run(otelcol, "components")
    assert result.returncode == 0, result.stderr
    built = yaml.safe_load(result.stdout)
    used: dict[str, set[str]] = {kind: set() for kind in COMPONENT_KINDS}
    for config in (*BUNDLED_COLLECTOR_CONFIGS, ZIPKIN_OVERLAY):
        for kind, types in component_types(config).items():
            used[kind] |= types
    for kind in COMPONENT_KINDS:
        assert {c["name"] for c in built.get(kind) or []} == used[kind], kind


def test_manifest_pins_one_collector_release() -> None:
    """Every component of the ocb manifest comes from one core/contrib release."""
    manifest = yaml.safe_load((COLLECTOR_DIR / "builder-config.yaml").read_text())
    versions = {
        entry["gomod"].split()[1]
        for kind in (*COMPONENT_KINDS, "providers")
        for entry in manifest.get(kind) or []
        if not entry["gomod"].startswith("go.opentelemetry.io/collector/confmap/")
    }
    assert len(versions) == 1, versions


@pytest.mark.parametrize(
    "config",
    [*BUNDLED_COLLECTOR_CONFIGS, ZIPKIN_OVERLAY],
    ids=[*CONFIG_IDS, ZIPKIN_OVERLAY.name],
)
def test_every_collector_endpoint_is_overridable(config: Path) -> None:
    """Each listen/export endpoint and port is an environment variable with a loopback default."""
    text = config.read_text()
    values = re.findall(r"^\s*(?:endpoint|host|port):\s*(.+)$", text, flags=re.MULTILINE)
    assert values
    for value in values:
        assert re.fullmatch(r"\$\{env:[A-Z_]+:-[^}]+\}", value.strip()), value
    assert "0.0.0.0" not in text


@pytest.mark.parametrize("config", EXPORTING_CONFIGS, ids=[p.name for p in EXPORTING_CONFIGS])
def test_prometheus_exporter_keeps_exemplars(config: Path) -> None:
    """The prometheus exporter speaks OpenMetrics (exemplars) and keeps default name translation."""
    exporter = yaml.safe_load(config.read_text())["exporters"]["prometheus"]
    assert exporter["enable_open_metrics"] is True
    assert "translation_strategy" not in exporter
    assert "namespace" not in exporter


def test_tail_sampling_computes_span_metrics_before_sampling() -> None:
    """span_metrics is fed by a traces pipeline without tail_sampling, from the same receiver."""
    cfg = yaml.safe_load((COLLECTOR_DIR / "otelcol-tailsampling.yaml").read_text())
    pipelines = cfg["service"]["pipelines"]
    feeding = [p for p in pipelines.values() if "span_metrics" in p.get("exporters", [])]
    sampled = [p for p in pipelines.values() if "tail_sampling" in p.get("processors", [])]
    assert feeding
    assert sampled
    assert all("tail_sampling" not in p["processors"] for p in feeding)
    assert set(feeding[0]["receivers"]) == set(sampled[0]["receivers"])
    policy_types = {p["type"] for p in cfg["processors"]["tail_sampling"]["policies"]}
    assert {"status_code", "string_attribute", "numeric_attribute", "probabilistic"} <= policy_types


@pytest.mark.parametrize("config", [JAEGER_CONFIG, JAEGER_BADGER_CONFIG], ids=["memory", "badger"])
def test_jaeger_validates_its_config(config: Path) -> None:
    """`jaeger validate` accepts collector/jaeger/config.yaml and config-badger.yaml."""
    jaeger = require_stack_binaries("jaeger")["jaeger"]
    result = run(jaeger, "validate", f"--config={config}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_prometheus_config() -> None:
    """promtool checks prometheus.yml (and with it the rule files it loads)."""
    promtool = require_stack_binaries("promtool")["promtool"]
    result = run(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_prometheus_config_is_valid(tmp_path: Path) -> None:
    """A per-test copy has the given targets, absolute rule paths and short intervals."""
    promtool = require_stack_binaries("promtool")["promtool"]
    out = render_prometheus_config(
        tmp_path / "prometheus.yml",
        targets={"otel-collector-exporter": "127.0.0.1:1111", "otel-collector": "127.0.0.1:2222"},
        alertmanager="127.0.0.1:3333",
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    cfg = yaml.safe_load(out.read_text())
    assert [j["job_name"] for j in cfg["scrape_configs"]] == [
        "otel-collector-exporter",
        "otel-collector",
    ]
    assert cfg["scrape_configs"][0]["honor_labels"] is True
    assert all(Path(p).is_absolute() for p in cfg["rule_files"])
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:3333"]
    result = run(promtool, "check", "config", out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_alertmanager_configs(tmp_path: Path) -> None:
    """amtool checks alertmanager.yml and a per-test copy pointed at a test webhook."""
    amtool = require_stack_binaries("amtool")["amtool"]
    copy = render_alertmanager_config(
        tmp_path / "am.yml", webhook_url="http://127.0.0.1:9/hook", group_wait="1s"
    )
    hooks = [h for r in yaml.safe_load(copy.read_text())["receivers"] for h in r["webhook_configs"]]
    assert {h["url"] for h in hooks} == {"http://127.0.0.1:9/hook"}
    for config in (ALERTMANAGER_CONFIG, copy):
        result = run(amtool, "check-config", config)
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_mounts_the_same_config_files() -> None:
    """docker-compose.yaml pins every image and mounts files that exist in the repository."""
    compose = yaml.safe_load((COLLECTOR_DIR / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"otel-collector", "jaeger", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, (name, image)
        assert not image.endswith(":latest"), (name, image)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):  # ours; ../dashboards belongs to the dashboards' owners
                assert (COLLECTOR_DIR / source).exists(), (name, source)
    mounted = " ".join(v for s in services.values() for v in s.get("volumes", []))
    for path in ("./otelcol.yaml:", "./jaeger/config.yaml:", "./prometheus:", "./alertmanager/"):
        assert path in mounted, path
