"""Static checks of the Grafana dashboards and their provisioning.

Every dashboard is valid JSON with a fixed uid, references datasources only by a provisioned uid,
has the service and model variables, and every PromQL expression of every panel parses (promtool
checks it as a recording rule) and reads only metrics of the telemetry contract or recorded by the
alert rules. The live check (every query returns data) is in the e2e suite, through
`_queries.iter_panel_queries`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from _queries import (
    DASHBOARD_FILES,
    JAEGER_UID,
    PROMETHEUS_UID,
    PROVISIONING_DIR,
    ROOT,
    PanelQuery,
    iter_all_panel_queries,
    iter_datasource_refs,
    iter_panel_queries,
    iter_panels,
    load_dashboard,
    render,
)
from _support.stack_fixtures import require_stack_binaries


def _load_rules_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pixel_llm_rules_helpers", ROOT / "tests" / "rules" / "_rules.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = _load_rules_helpers()

EXPECTED_UIDS = {
    "pixel-llm-overview.json": "pixel-llm-overview",
    "pixel-llm-resilience.json": "pixel-llm-resilience",
}
REQUIRED_PANELS = {
    "pixel-llm-overview": {
        "Requests by outcome": "timeseries",
        "Error ratio vs SLO": "timeseries",
        "Error budget burn rate": "timeseries",
        "LLM latency p50 / p95 / p99": "timeseries",
        "Tokens by type": "timeseries",
        "Retries/s by error type": "timeseries",
        "Fallbacks/s by strategy": "timeseries",
        "Circuit breaker state": "state-timeline",
        "Top error codes": "bargauge",
    },
    "pixel-llm-resilience": {
        "Circuit breaker state": "state-timeline",
        "Breaker transitions": "timeseries",
        "Rejected calls/s": "timeseries",
        "Half-open probes started": "timeseries",
        "Half-open probe outcomes": "timeseries",
        "Retry attempts/s by error type": "timeseries",
        "Retries exhausted/s by error type": "timeseries",
        "Fallbacks/s by strategy and result": "timeseries",
    },
}
# Series without a job label: the SLO objective and budget are global.
GLOBAL_SERIES = ("pixel_llm:slo_error_budget:ratio", "pixel_llm:slo_objective:ratio")
DASHBOARDS_DOC = ROOT / "docs" / "dashboards.md"
COMPOSE = ROOT / "collector" / "docker-compose.yaml"

QUERIES = list(iter_all_panel_queries())


def _name(path: Path) -> str:
    return path.name


def _provisioned_datasources() -> dict[str, str]:
    data = yaml.safe_load(
        (PROVISIONING_DIR / "datasources" / "datasources.yaml").read_text(encoding="utf-8")
    )
    return {ds["uid"]: ds["type"] for ds in data["datasources"]}


@pytest.fixture(scope="module")
def promtool() -> Path:
    """Path of promtool (skip locally / fail in CI when it is missing)."""
    return require_stack_binaries("promtool")["promtool"]


def test_there_are_two_dashboards() -> None:
    """dashboards/ holds exactly the overview and the resilience dashboards."""
    assert sorted(p.name for p in DASHBOARD_FILES) == sorted(EXPECTED_UIDS)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_dashboard_is_valid_json_with_fixed_uid(path: Path) -> None:
    """The dashboard parses, has its fixed uid, no database id, and a recent schemaVersion."""
    board = json.loads(path.read_text(encoding="utf-8"))
    assert board["uid"] == EXPECTED_UIDS[path.name]
    assert board["id"] is None
    assert board["schemaVersion"] >= 39
    assert board["title"].startswith("pixel-llm / ")
    assert board["description"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_panels_have_unique_ids_titles_descriptions_and_fit_the_grid(path: Path) -> None:
    """Panel ids are unique; every panel has a title, a description and a place in 24 columns."""
    panels = list(iter_panels(load_dashboard(path)))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["title"]
        if panel["type"] != "row":
            assert panel.get("description"), f"{panel['title']} has no description"
            assert panel.get("targets"), f"{panel['title']} has no query"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_panels_do_not_overlap(path: Path) -> None:
    """No two panels share a grid cell."""
    taken: dict[tuple[int, int], str] = {}
    for panel in load_dashboard(path)["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_every_datasource_is_referenced_by_a_provisioned_uid(path: Path) -> None:
    """Every datasource reference is {type, uid} with a uid and type provisioned for Grafana."""
    provisioned = _provisioned_datasources()
    refs = list(iter_datasource_refs(load_dashboard(path)))
    assert refs
    for where, ref in refs:
        assert isinstance(ref, dict), f"{where}: datasource by name ({ref!r}), not by uid"
        if ref.get("uid") == "-- Grafana --":  # the built-in annotations source
            continue
        assert ref.get("uid") in provisioned, f"{where}: unknown datasource uid {ref.get('uid')}"
        assert ref.get("type") == provisioned[ref["uid"]], where


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_service_and_model_variables(path: Path) -> None:
    """Both dashboards have $service (job) and $model (gen_ai_request_model) from Prometheus."""
    variables = {v["name"]: v for v in load_dashboard(path)["templating"]["list"]}
    assert set(variables) >= {"service", "model"}
    service, model = variables["service"], variables["model"]
    assert service["datasource"]["uid"] == PROMETHEUS_UID
    assert model["datasource"]["uid"] == PROMETHEUS_UID
    assert re.search(r"label_values\(.*,\s*job\)$", service["definition"])
    assert re.search(r"label_values\(.*\$service.*,\s*gen_ai_request_model\)$", model["definition"])
    assert model["includeAll"]
    assert model["allValue"] == ".*"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_required_panels_present(path: Path) -> None:
    """The panels the issue asks for exist with the right visualisation."""
    board = load_dashboard(path)
    types = {p["title"]: p["type"] for p in iter_panels(board)}
    for title, kind in REQUIRED_PANELS[board["uid"]].items():
        assert types.get(title) == kind, f"{title}: {types.get(title)} != {kind}"


def test_latency_panel_shows_three_percentiles_with_exemplars() -> None:
    """The LLM latency panel plots p50/p95/p99 of gen_ai.client.operation.duration, exemplars on."""
    queries = [q for q in QUERIES if q.panel_title == "LLM latency p50 / p95 / p99"]
    assert [re.search(r"histogram_quantile\(([\d.]+)", q.expr)[1] for q in queries] == [
        "0.50",
        "0.95",
        "0.99",
    ]
    for query in queries:
        assert "gen_ai_client_operation_duration_seconds_bucket" in query.expr
        assert query.exemplar


def test_jaeger_panel_searches_the_selected_service() -> None:
    """The traces panel queries the Jaeger datasource for the selected service's generate spans."""
    board = load_dashboard(ROOT / "dashboards" / "pixel-llm-overview.json")
    jaeger = [p for p in iter_panels(board) if p.get("datasource", {}).get("uid") == JAEGER_UID]
    assert len(jaeger) == 1
    target = jaeger[0]["targets"][0]
    assert target["queryType"] == "search"
    assert target["service"] == "$service"
    assert target["operation"] == "pixel_llm.generate"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_filters_by_service_with_a_regex_matcher(query: PanelQuery) -> None:
    """Each query filters by job=~"$service" (multi-value safe), unless it reads a global series."""
    if query.expr.strip() in GLOBAL_SERIES:
        return
    assert 'job=~"$service"' in query.expr
    assert not re.search(r'=\s*"\$(service|model)"', query.expr.replace('=~"$', ""))
    if "$model" in query.expr:
        assert 'gen_ai_request_model=~"$model"' in query.expr


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_reads_only_known_metrics(query: PanelQuery) -> None:
    """Every metric a panel reads is in the telemetry contract or recorded by the alert rules."""
    known = RULES.contract_metric_names() | RULES.recorded_names(RULES.load_rules())
    names = RULES.metric_names(query.promql)
    assert names, f"no metric found in {query.promql!r}"
    assert not names - known, f"unknown metrics {sorted(names - known)}"


def test_render_replaces_grafana_variables() -> None:
    """render() fills $var, ${var} and ${var:fmt}, and keeps unknown names."""
    expr = 'rate(x{job=~"$service", m=~"${model:regex}"}[$__rate_interval]) $unknown'
    assert render(expr, {"service": "svc"}) == 'rate(x{job=~"svc", m=~".*"}[1m]) $unknown'


def test_iter_panel_queries_yields_only_prometheus_targets() -> None:
    """The helper skips the Jaeger panel and renders every expression."""
    board = load_dashboard(ROOT / "dashboards" / "pixel-llm-overview.json")
    queries = list(iter_panel_queries(board, {"service": "pixel-llm"}))
    assert len(queries) >= 15
    assert all("$" not in q.promql for q in queries)
    assert all('job=~"pixel-llm"' in q.promql for q in queries if q.expr not in GLOBAL_SERIES)
    assert "Recent failed generate calls" not in {q.panel_title for q in queries}


def test_every_promql_expression_parses(promtool: Path, tmp_path: Path) -> None:
    """promtool accepts every rendered panel query (as a recording rule); a broken one fails."""
    rules: dict[str, Any] = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": q.promql}
                    for i, q in enumerate(QUERIES)
                ],
            }
        ]
    }
    good = tmp_path / "dashboards.yml"
    good.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [str(promtool), "check", "rules", str(good)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(QUERIES)} rules found" in result.stdout

    rules["groups"][0]["rules"].append({"record": "dashboard:broken", "expr": "sum by (job (x)"})
    bad = tmp_path / "broken.yml"
    bad.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [str(promtool), "check", "rules", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_prometheus_datasource_links_exemplars_to_jaeger() -> None:
    """Exemplars' trace_id label opens the trace in the provisioned Jaeger datasource."""
    data = yaml.safe_load(
        (PROVISIONING_DIR / "datasources" / "datasources.yaml").read_text(encoding="utf-8")
    )
    by_uid = {ds["uid"]: ds for ds in data["datasources"]}
    assert by_uid[PROMETHEUS_UID]["type"] == "prometheus"
    assert by_uid[JAEGER_UID]["type"] == "jaeger"
    destinations = by_uid[PROMETHEUS_UID]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": JAEGER_UID}.items() <= destinations[0].items()
    assert by_uid[JAEGER_UID]["jsonData"]["tracesToMetrics"]["datasourceUid"] == PROMETHEUS_UID


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    """The provider loads JSON files from /var/lib/grafana/dashboards."""
    data = yaml.safe_load(
        (PROVISIONING_DIR / "dashboards" / "dashboards.yaml").read_text(encoding="utf-8")
    )
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_compose_mounts_match_provisioning() -> None:
    """docker compose mounts dashboards/ and its provisioning where the provider expects them."""
    if not COMPOSE.exists():
        pytest.skip("collector/docker-compose.yaml not present")
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    volumes = [v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"]]
    assert ["../dashboards", "/var/lib/grafana/dashboards"] in volumes
    assert ["../dashboards/provisioning", "/etc/grafana/provisioning"] in volumes


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=_name)
def test_every_panel_is_documented(path: Path) -> None:
    """docs/dashboards.md names every panel and shows its current queries, under the uid."""
    doc = DASHBOARDS_DOC.read_text(encoding="utf-8")
    board = load_dashboard(path)
    assert f"`{board['uid']}`" in doc
    for panel in iter_panels(board):
        if panel["type"] != "row":
            assert panel["title"] in doc, f"{panel['title']} is not in docs/dashboards.md"
    for query in iter_panel_queries(board):
        assert query.expr in doc, f"{query.name}: query differs from docs/dashboards.md"


_OLD, _NEW = "gen_ai_client_operation_duration_seconds", "gen_ai_client_inference_duration_seconds"
_RENAMED = {
    f"{_OLD}_bucket": f"{_NEW}_bucket",
    f"{_OLD}_count": f"{_NEW}_count",
    "gen_ai_client_token_usage_sum": "gen_ai_client_inference_usage_input_tokens_total",
}


@pytest.mark.parametrize("current", sorted(_RENAMED))
def test_genai_panels_read_either_name(current: str) -> None:
    """A panel reading a GenAI metric by today's name also reads its coming name (`or`)."""
    readers = [q for q in QUERIES if current in q.expr]
    assert readers, f"no panel reads {current}"
    for query in readers:
        assert _RENAMED[current] in query.expr, query.panel_title
        assert " or " in query.expr, query.panel_title
