"""The Grafana dashboards' queries with template variables filled in, for static and live checks.

    for query in iter_panel_queries(load_dashboard(path)):
        prometheus.query(query.promql)          # e2e: every panel query returns data

`iter_panel_queries` yields the PromQL of every Prometheus target of every panel (panels nested
in rows included). `promql` has Grafana's variables replaced: $service and $model by `.*` (every
dashboard matches them with `=~`), $__rate_interval by 1m, $__interval by 15s, $__range by 1h;
pass `variables=` to change any of them, e.g. {"service": "pixel-llm-e2e"}.

No pytest and no pixel_llm_otel import: the e2e suite can import it as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "dashboards"
DASHBOARD_FILES = tuple(sorted(DASHBOARDS_DIR.glob("*.json")))
PROVISIONING_DIR = DASHBOARDS_DIR / "provisioning"

PROMETHEUS_UID = "pixel-llm-prometheus"
JAEGER_UID = "pixel-llm-jaeger"

DEFAULT_VARIABLES: Mapping[str, str] = {
    "service": ".*",
    "model": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One Prometheus query of one dashboard panel."""

    dashboard_uid: str
    panel_id: int
    panel_title: str
    panel_type: str
    ref_id: str
    expr: str  # as written in the dashboard
    promql: str  # with template variables replaced
    instant: bool
    exemplar: bool

    @property
    def name(self) -> str:
        """A readable id: dashboard uid / panel title / refId."""
        return f"{self.dashboard_uid}/{self.panel_title}/{self.ref_id}"


def load_dashboard(path: Path) -> dict[str, Any]:
    """The parsed dashboard JSON."""
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels of collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def render(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """`expr` with $var, ${var}, ${var:fmt} and [[var]] replaced (unknown names are left)."""
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(substitute, expr)


def _datasource_uid(target: Mapping[str, Any], panel: Mapping[str, Any]) -> str | None:
    source = target.get("datasource") or panel.get("datasource")
    if isinstance(source, Mapping):
        uid = source.get("uid")
        return str(uid) if uid is not None else None
    return None


def iter_panel_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> Iterator[PanelQuery]:
    """Every Prometheus target of every panel, its PromQL rendered with `variables`."""
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if _datasource_uid(target, panel) != PROMETHEUS_UID or not target.get("expr"):
                continue
            yield PanelQuery(
                dashboard_uid=dashboard["uid"],
                panel_id=panel["id"],
                panel_title=panel["title"],
                panel_type=panel["type"],
                ref_id=target["refId"],
                expr=target["expr"],
                promql=render(target["expr"], variables),
                instant=bool(target.get("instant")),
                exemplar=bool(target.get("exemplar")),
            )


def iter_all_panel_queries(variables: Mapping[str, str] | None = None) -> Iterator[PanelQuery]:
    """iter_panel_queries over every dashboard in dashboards/."""
    for path in DASHBOARD_FILES:
        yield from iter_panel_queries(load_dashboard(path), variables)


def iter_datasource_refs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(JSON path, value) of every `datasource` key anywhere in a dashboard."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "datasource":
                yield here, value
            yield from iter_datasource_refs(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_datasource_refs(item, f"{path}[{index}]")
