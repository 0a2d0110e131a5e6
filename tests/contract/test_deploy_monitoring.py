"""The monitoring files under deploy/: valid for Prometheus, and querying only real metrics."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from s321.metrics import exported_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "s321.json"
#: Series Prometheus itself provides: the only names a query may use that s321 does not export.
PROMETHEUS_OWN = {"up"}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "bool", "offset", "inf", "nan"}  # fmt: skip
#: Grafana's template variables, replaced by values Prometheus accepts.
_GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$group": "s321"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS:
            names.add(m.group(1))
    return names


def _grafana(expr: str) -> str:
    for var, value in _GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            inner = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query["query"])
            assert inner, f"template variable {var['name']} uses an unexpected query"
            yield f"variable {var['name']}", inner.group(1)


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_pass_promtool_check() -> None:
    """``promtool check rules`` accepts the alert rules."""
    run = _promtool("check", "rules", str(ALERTS))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in run.stdout


def test_alerts_fire_on_the_situations_they_describe() -> None:
    """``promtool test rules`` runs the alert unit tests: each fires when it should, not before."""
    run = _promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    """The example Prometheus configuration passes ``promtool check config``."""
    run = _promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_queries_only_exported_metrics() -> None:
    """Each alert expression selects only metrics the code exports (or Prometheus's ``up``)."""
    known = exported_names() | PROMETHEUS_OWN
    for rule in _alert_rules():
        used = metric_names(rule["expr"])
        assert used, f"{rule['alert']} selects no metric"
        assert used <= known, f"{rule['alert']} queries unknown {sorted(used - known)}"


def test_every_dashboard_query_uses_only_exported_metrics() -> None:
    """Each dashboard panel and variable queries only metrics the code exports."""
    known = exported_names() | PROMETHEUS_OWN
    seen: set[str] = set()
    for title, expr in _dashboard_exprs():
        used = metric_names(_grafana(expr))
        assert used, f"panel {title!r} selects no metric: {expr}"
        assert used <= known, f"panel {title!r} queries unknown {sorted(used - known)}"
        seen |= used
    # The dashboard shows what operators need: lag, time lag, throughput, outcomes, dead
    # letters, waiting shipments and latency.
    assert {
        "s321_consumer_lag_records", "s321_consumer_lag_seconds", "s321_input_events_total",
        "s321_decisions_total", "s321_dead_letters_total", "s321_shipments_waiting",
        "s321_decision_latency_from_broker_seconds_bucket",
        "s321_decision_latency_from_event_seconds_bucket",
    } <= seen  # fmt: skip


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query, variables filled in, parses as PromQL for ``promtool``."""
    rules = [
        {"record": f"s321:dashboard_check:{i}", "expr": _grafana(expr)}
        for i, (_title, expr) in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = _promtool("check", "rules", str(path))
    assert run.returncode == 0, run.stdout + run.stderr


def test_each_alert_has_its_runbook_section() -> None:
    """Every alert links to a heading in deploy/OPERATIONS.md that exists."""
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (DEPLOY / "OPERATIONS.md").read_text().splitlines()
        if line.startswith("#")
    }
    for rule in _alert_rules():
        anchor = rule["annotations"]["runbook_url"].partition("#")[2]
        assert anchor in headings, f"{rule['alert']}: no heading for #{anchor}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{x="y"}[5m]))', {"a_bucket"}),
        ("time() - b_seconds > 120 and on (g) c_total", {"b_seconds", "c_total"}),
        ('(sum(rate(d_total[15m])) or vector(0)) == 0 unless up{job="w"}', {"d_total", "up"}),
    ],
)
def test_name_extraction_sees_selectors_and_nothing_else(expr: str, names: set[str]) -> None:
    """The extractor used above finds exactly the selected metric names in known expressions."""
    assert metric_names(expr) == names
