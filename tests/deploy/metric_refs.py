"""Which metrics the dashboard, the alerts and the HPA adapter query, and which names a
Prometheus registry really exports. Shared by the unit tests here and
tests/integration/test_deploy_metrics.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "k8s" / "base" / "grafana" / "routeiq-decision.json"
RULES = DEPLOY / "k8s" / "base" / "prometheusrule.yaml"
ADAPTER = DEPLOY / "k8s" / "prometheus-adapter" / "values.yaml"

METRIC = re.compile(r"\b(routeiq_[a-z0-9_]*[a-z0-9])\b")
# Metrics from outside RouteIQ that the expressions may use (Prometheus's own scrape health).
EXTERNAL = {"up"}
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target, alert/record rule and adapter query."""
    found: list[tuple[str, str]] = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"dashboard variable {variable['name']}", variable["query"]))
    for group in yaml.safe_load(RULES.read_text())["spec"]["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    for rule in yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]:
        found.append((f"adapter rule {rule['name']['as']}", rule["seriesQuery"]))
    return found


def referenced(exprs: Iterable[tuple[str, str]] | None = None) -> dict[str, set[str]]:
    """routeiq_* metric name -> where it is queried."""
    where: dict[str, set[str]] = {}
    for source, expr in expressions() if exprs is None else exprs:
        for name in METRIC.findall(expr):
            where.setdefault(name, set()).add(source)
    return where


def sample_names(families: Iterable[Any]) -> set[str]:
    """Every series name a set of prometheus_client metric families can expose (a family with
    no children yet still counts: it exists, its labels just have not been seen)."""
    names: set[str] = set()
    for family in families:
        for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names
