"""The alert rules: promtool checks and unit tests, and the conventions every alert follows.

promtool comes from the stack (`make stack-build`, Debian's prometheus package): missing, these
tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from _rules import (
    E2E_FOR,
    E2E_RULES,
    E2E_WINDOWS,
    PRODUCTION_RULES,
    PROMETHEUS_DIR,
    ROOT,
    RULE_TESTS_DIR,
    RUNBOOK_BASE_URL,
    SEVERITIES,
    alert_names,
    contract_metric_names,
    e2e_rules,
    github_anchor,
    iter_rules,
    load_rules,
    metric_names,
    recorded_names,
    render_e2e_rules,
    runbook_anchors,
)
from _support.stack_fixtures import require_stack_binaries

RULE_FILES = sorted([*PROMETHEUS_DIR.glob("rules/*.yml"), *PROMETHEUS_DIR.glob("rules-e2e/*.yml")])
TEST_FILES = sorted(RULE_TESTS_DIR.glob("*_test.yml"))
PRODUCTION = load_rules(PRODUCTION_RULES)
ALERTS = [(name, rule) for name, rule in iter_rules(PRODUCTION) if "alert" in rule]

# Metrics the rules may read besides the contract's and the recorded ones: Prometheus' own `up`
# and the collector's self-metrics (selected by a __name__ regex).
# Not in the contract (it is the app's own telemetry health, documented in docs/observability.md).
EXTRA_METRICS = frozenset({"up", "pixel_llm_telemetry_dropped_total"})


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module")
def promtool() -> Path:
    """Path of promtool (skip locally / fail in CI when it is missing)."""
    return require_stack_binaries("promtool")["promtool"]


def _run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False
    )


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=_rel)
def test_promtool_check_rules(promtool: Path, rules_file: Path) -> None:
    """`promtool check rules` accepts every rules file."""
    result = _run(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_production_and_e2e_rules_load_together(promtool: Path) -> None:
    """The e2e variant can be loaded beside the production rules (no duplicate records)."""
    result = _run(promtool, "check", "rules", str(PRODUCTION_RULES), str(E2E_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not set(recorded_names(PRODUCTION)) & recorded_names(load_rules(E2E_RULES))


@pytest.mark.parametrize("test_file", TEST_FILES, ids=_rel)
def test_promtool_unit_tests(promtool: Path, test_file: Path) -> None:
    """`promtool test rules` passes every unit-test file."""
    result = _run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_wrong_expectation(promtool: Path, tmp_path: Path) -> None:
    """A unit test whose expected annotation is wrong fails, so the passing ones mean something."""
    text = (RULE_TESTS_DIR / "resilience_test.yml").read_text(encoding="utf-8")
    assert "retries 1.50 times" in text
    broken = tmp_path / "sabotaged_test.yml"
    broken.write_text(
        text.replace("retries 1.50 times", "retries 9.99 times").replace(
            "../rules/", str(PRODUCTION_RULES.parent) + "/"
        ),
        encoding="utf-8",
    )
    result = _run(promtool, "test", "rules", str(broken))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def _alert_test_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"fires": n, "quiet": n} over every alert_rule_test of the production rules."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"fires": 0, "quiet": 0})
    for test_file in TEST_FILES:
        data: dict[str, Any] = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        if not any(str(f).startswith("../rules/") for f in data.get("rule_files", [])):
            continue
        for group in data["tests"]:
            for case in group.get("alert_rule_test", []):
                kind = "fires" if case.get("exp_alerts") else "quiet"
                counts[case["alertname"]][kind] += 1
    return counts


@pytest.mark.parametrize("alertname", alert_names(PRODUCTION))
def test_every_alert_has_firing_and_quiet_unit_tests(alertname: str) -> None:
    """Each alert has a promtool case where it fires and one where it stays quiet."""
    counts = _alert_test_cases()[alertname]
    assert counts["fires"] >= 1, f"no unit test where {alertname} fires"
    assert counts["quiet"] >= 1, f"no unit test where {alertname} stays quiet"


def test_every_burn_rate_window_pair_fires_in_a_unit_test() -> None:
    """Each of the three burn-rate rules (by window pair) fires in some unit test."""
    pairs = {
        (rule["labels"]["long_window"], rule["labels"]["short_window"])
        for _, rule in ALERTS
        if rule["alert"] == "PixelLLMErrorBudgetBurn"
    }
    assert pairs == {("1h", "5m"), ("6h", "30m"), ("3d", "6h")}
    fired = set()
    for test_file in TEST_FILES:
        data = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        for group in data["tests"]:
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    labels = alert["exp_labels"]
                    if "long_window" in labels and "rules_variant" not in labels:
                        fired.add((labels["long_window"], labels["short_window"]))
    assert fired == pairs


@pytest.mark.parametrize(
    ("alertname", "rule"), ALERTS, ids=[f"{r['alert']}-{i}" for i, (_, r) in enumerate(ALERTS)]
)
def test_alert_has_severity_summary_description_and_runbook(alertname: str, rule: dict) -> None:
    """Every alert has severity page|ticket, a summary, a description and a runbook_url."""
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"].split()) >= 10
    url = annotations["runbook_url"]
    assert url == f"{RUNBOOK_BASE_URL}#{github_anchor(rule['alert'])}"


@pytest.mark.parametrize("alertname", alert_names(PRODUCTION))
def test_runbook_section_exists_for_every_alert(alertname: str) -> None:
    """docs/runbooks.md has a heading whose anchor is the alert's runbook_url fragment."""
    assert github_anchor(alertname) in runbook_anchors()


def test_slo_objective_is_one_number() -> None:
    """The objective is recorded once, as a single literal that every burn rate derives from."""
    rules = dict(
        (rule["record"], rule["expr"]) for _, rule in iter_rules(PRODUCTION) if "record" in rule
    )
    assert re.fullmatch(r"vector\(0\.99\)", rules["pixel_llm:slo_objective:ratio"].strip())
    assert "pixel_llm:slo_objective:ratio" in rules["pixel_llm:slo_error_budget:ratio"]
    burns = [name for name in rules if "error_budget_burn" in name]
    assert len(burns) == 5
    for name in burns:
        assert "pixel_llm:slo_error_budget:ratio" in rules[name]
        assert not re.search(r"0\.0?1\b|0\.99", rules[name])


@pytest.mark.parametrize(
    ("group", "rule"),
    list(iter_rules(PRODUCTION)),
    ids=[r.get("alert") or r.get("record") for _, r in iter_rules(PRODUCTION)],
)
def test_rules_read_only_contract_recorded_or_known_metrics(group: str, rule: dict) -> None:
    """Every metric a rule reads is in the telemetry contract, recorded here, or `up`."""
    known = contract_metric_names() | recorded_names(PRODUCTION) | EXTRA_METRICS
    unknown = metric_names(rule["expr"]) - known
    assert not unknown, f"{group}: unknown metrics {sorted(unknown)}"


def test_metric_name_extraction_sees_selectors_not_labels() -> None:
    """The metric-name extractor used above finds metrics and skips labels and functions."""
    expr = (
        'sum by (job, le) (rate(gen_ai_client_operation_duration_seconds_bucket{job="x"}[5m]))'
        " / on () group_left () pixel_llm:slo_error_budget:ratio and up == 0"
    )
    assert metric_names(expr) == {
        "gen_ai_client_operation_duration_seconds_bucket",
        "pixel_llm:slo_error_budget:ratio",
        "up",
    }


def test_contract_names_parsed() -> None:
    """The contract parser finds the counters and expands histograms (guards the test above)."""
    names = contract_metric_names()
    assert "pixel_llm_generate_requests_total" in names
    assert "gen_ai_client_operation_duration_seconds_bucket" in names
    assert "pixel_llm_circuit_breaker_state" in names
    assert len(names) >= 20


def test_e2e_rules_file_is_generated_from_production() -> None:
    """The committed e2e variant equals what tests/rules/_rules.py generates now."""
    assert E2E_RULES.read_text(encoding="utf-8") == render_e2e_rules(PRODUCTION), (
        "collector/prometheus/rules-e2e is stale: run `python tests/rules/_rules.py`"
    )


def test_e2e_variant_only_shortens_windows() -> None:
    """The e2e variant keeps alert names, severities and thresholds; windows <= 5m, `for` 15s."""
    variant = e2e_rules(PRODUCTION)
    prod_alerts = [r for _, r in ALERTS if r["alert"] == "PixelLLMErrorBudgetBurn"]
    e2e_alerts = [r for _, r in iter_rules(variant) if "alert" in r]
    assert [r["alert"] for r in e2e_alerts] == [r["alert"] for r in prod_alerts]
    for prod, e2e in zip(prod_alerts, e2e_alerts, strict=True):
        assert e2e["for"] == E2E_FOR
        assert e2e["labels"]["severity"] == prod["labels"]["severity"]
        assert e2e["labels"]["rules_variant"] == "e2e"
        assert e2e["labels"]["long_window"] == E2E_WINDOWS[prod["labels"]["long_window"]]
        assert re.findall(r">\s*([\d.]+)", e2e["expr"]) == re.findall(r">\s*([\d.]+)", prod["expr"])
    for _, rule in iter_rules(variant):
        for window in re.findall(r"\[(\w+)\]", rule["expr"]):
            assert window in E2E_WINDOWS.values()
