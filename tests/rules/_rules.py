"""Helpers for the alert-rule tests, and the generator of the end-to-end rules variant.

The end-to-end tests cannot wait an hour for a burn-rate alert. They load
collector/prometheus/rules-e2e/pixel-llm-slo-e2e.yml, generated from the production rules file by
`e2e_rules()`: the two SLO groups only, with every window and `for` shortened, so that a full
outage fires PixelLLMErrorBudgetBurn within about a minute. It differs from production in exactly
these ways (tests/rules/test_promtool.py checks the committed file is what this generates):

- windows 5m, 30m, 1h, 6h, 3d become 15s, 30s, 1m, 2m, 5m (in range selectors, record names,
  the long_window/short_window labels and the descriptions);
- every `for` becomes 15s, and the groups are evaluated every 5s (`interval`), whatever the
  server's global evaluation_interval (scrape the collector every 5s or faster so that a 15s
  window holds at least two samples);
- recorded series get an `e2e_` prefix (e2e_job:..., e2e_pixel_llm:...) so the variant can be
  loaded beside the production file without clashing; alerts keep their name and gain the label
  rules_variant="e2e".

Regenerate after editing the production rules:  python tests/rules/_rules.py
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "collector" / "prometheus"
PRODUCTION_RULES = PROMETHEUS_DIR / "rules" / "pixel-llm-alerts.yml"
E2E_RULES = PROMETHEUS_DIR / "rules-e2e" / "pixel-llm-slo-e2e.yml"
RULE_TESTS_DIR = PROMETHEUS_DIR / "rules-test"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
CONTRACT = ROOT / "docs" / "telemetry-contract.md"

RUNBOOK_BASE_URL = "https://github.com/pixel-llm-otel/pixel-llm-otel/blob/main/docs/runbooks.md"
SEVERITIES = frozenset({"page", "ticket"})

SLO_GROUPS = ("pixel-llm-slo-recording", "pixel-llm-slo-alerts")
E2E_WINDOWS = {"5m": "15s", "30m": "30s", "1h": "1m", "6h": "2m", "3d": "5m"}
E2E_FOR = "15s"
E2E_INTERVAL = "5s"
E2E_PREFIX = "e2e_"

_WINDOW_IN_RANGE = re.compile(r"\[(" + "|".join(E2E_WINDOWS) + r")\]")
_WINDOW_IN_RECORD = re.compile(r":rate(" + "|".join(E2E_WINDOWS) + r")$")
_WINDOW_IN_TEXT = re.compile(r"\b(last )(" + "|".join(E2E_WINDOWS) + r")\b")


def load_rules(path: Path = PRODUCTION_RULES) -> dict[str, Any]:
    """The parsed rules file."""
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def iter_rules(rules: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group name, rule) for every rule of a parsed rules file."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield group["name"], rule


def alert_names(rules: Mapping[str, Any]) -> list[str]:
    """Distinct alert names, in file order."""
    names: list[str] = []
    for _, rule in iter_rules(rules):
        if "alert" in rule and rule["alert"] not in names:
            names.append(rule["alert"])
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors(path: Path = RUNBOOKS) -> set[str]:
    """Anchors of every heading of docs/runbooks.md."""
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            anchors.add(github_anchor(match.group(1)))
    return anchors


def contract_metric_names(path: Path = CONTRACT) -> set[str]:
    """Prometheus metric names from the telemetry contract's [Prometheus] column.

    `gen_ai_client_operation_duration_seconds_*` expands to its _bucket, _count and _sum series.
    """
    names: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[-1].startswith("`"):
            continue
        name = cells[-1].strip("`")
        if name.endswith("_*"):
            base = name[:-2]
            names.update({f"{base}_bucket", f"{base}_count", f"{base}_sum"})
        else:
            names.add(name)
    return names


def recorded_names(rules: Mapping[str, Any]) -> set[str]:
    """Names of every recording rule."""
    return {rule["record"] for _, rule in iter_rules(rules) if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (label matchers, grouping lists and strings removed)."""
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r'"[^"]*"', " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr):
        word = match.group(1)
        if word in {"and", "or", "unless", "bool", "offset", "le", "inf", "nan"}:
            continue
        names.add(word)
    return names


# --- the end-to-end variant -----------------------------------------------------------------------


def _e2e_record_name(name: str) -> str:
    name = _WINDOW_IN_RECORD.sub(lambda m: ":rate" + E2E_WINDOWS[m.group(1)], name)
    return E2E_PREFIX + name


def _rename_records(expr: str, renames: Mapping[str, str]) -> str:
    for old in sorted(renames, key=len, reverse=True):
        expr = re.sub(r"(?<![\w:])" + re.escape(old) + r"(?![\w:])", renames[old], expr)
    return expr


def e2e_rules(production: Mapping[str, Any]) -> dict[str, Any]:
    """The short-window variant of the SLO groups of a parsed production rules file."""
    groups = {g["name"]: g for g in production["groups"]}
    missing = [name for name in SLO_GROUPS if name not in groups]
    if missing:
        raise ValueError(f"production rules lack the SLO groups {missing}")
    renames = {
        rule["record"]: _e2e_record_name(rule["record"])
        for name in SLO_GROUPS
        for rule in groups[name]["rules"]
        if "record" in rule
    }
    out_groups = []
    for name in SLO_GROUPS:
        rules = []
        for rule in copy.deepcopy(groups[name]["rules"]):
            expr = _WINDOW_IN_RANGE.sub(lambda m: f"[{E2E_WINDOWS[m.group(1)]}]", rule["expr"])
            rule["expr"] = _rename_records(expr, renames)
            if "record" in rule:
                rule["record"] = renames[rule["record"]]
            else:
                rule["for"] = E2E_FOR
                labels = rule.setdefault("labels", {})
                for key in ("long_window", "short_window"):
                    if key in labels:
                        labels[key] = E2E_WINDOWS[labels[key]]
                labels["rules_variant"] = "e2e"
                annotations = rule.get("annotations", {})
                for key, text in annotations.items():
                    if key != "runbook_url":
                        text = _WINDOW_IN_TEXT.sub(
                            lambda m: m.group(1) + E2E_WINDOWS[m.group(2)], text
                        )
                        annotations[key] = _rename_records(text, renames)
            rules.append(rule)
        out_groups.append({"name": f"{name}-e2e", "interval": E2E_INTERVAL, "rules": rules})
    return {"groups": out_groups}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks; no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)

E2E_HEADER = """\
# GENERATED by `python tests/rules/_rules.py` from collector/prometheus/rules/pixel-llm-alerts.yml.
# Do not edit: change the production file and regenerate (a test fails when they disagree).
#
# Test-only variant of the error-rate SLO rules for the end-to-end tests: windows 5m/30m/1h/6h/3d
# become 15s/30s/1m/2m/5m, every `for` is 15s, the groups run every 5s, recorded series carry an
# e2e_ prefix and alerts the label rules_variant="e2e". A full outage fires
# PixelLLMErrorBudgetBurn{rules_variant="e2e"} within about a minute. Needs a scrape interval of
# 5s or less. Never load it in production: it pages on a few seconds of errors.
"""


def render_e2e_rules(production: Mapping[str, Any] | None = None) -> str:
    """The text of the generated e2e rules file."""
    variant = e2e_rules(production if production is not None else load_rules())
    body: str = yaml.dump(variant, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return E2E_HEADER + "\n" + body


def main(argv: list[str]) -> int:
    """Write the e2e variant (or print it with --stdout)."""
    text = render_e2e_rules()
    if "--stdout" in argv:
        sys.stdout.write(text)
    else:
        E2E_RULES.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {E2E_RULES.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
