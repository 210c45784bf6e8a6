"""The shipped Grafana dashboard queries only metrics and labels the code exports: the served
bento's /metrics, the service's own counters, and the monitoring pass's pushed gauges."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "charts" / "kubecycle" / "dashboards" / "kubecycle.json"
SERVICE = REPO / "src" / "kubecycle" / "serving" / "service.py"
METRIC = re.compile(r"\b((?:bentoml|kubecycle)_[a-z0-9_]+)")
BY = re.compile(r"by \(([^)]*)\)")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def _series(text: str) -> dict[str, set[str]]:
    """metric name -> label names, from Prometheus text exposition."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', rest)) if rest else set()
        found.setdefault(name.split(" ")[0], set()).update(labels)
    return found


def _monitoring_exposition() -> str:
    from prometheus_client import generate_latest

    from kubecycle.monitoring.drift import ColumnDrift, DriftResult
    from kubecycle.monitoring.prometheus import monitoring_registry
    from kubecycle.monitoring.realized import ChunkPerformance, RealizedPerformance

    drift = DriftResult({"x": ColumnDrift("x", "numeric", "ks", 0.2, 0.05, True, 100, 0.0)},
                        0.5, 100)
    chunk = ChunkPerformance("2026-12-01T00:00:00+00:00", 100, 80, 12.0, {"accuracy": 0.9})
    realized = RealizedPerformance("accuracy", [chunk], chunk, 0.8, False)
    registry = monitoring_registry("m", "1", drift, {"accuracy": 0.9}, realized)
    return generate_latest(registry).decode()


def _exported(served) -> dict[str, set[str]]:
    row = served["rows"].iloc[0].astype(object)
    record = {k: None if v != v else (v.item() if hasattr(v, "item") else v)
              for k, v in row.items()}
    assert requests.post(f"{served['base']}/predict", json={"record": record}, timeout=30).ok
    exported = _series(requests.get(f"{served['base']}/metrics", timeout=30).text)
    for name, labels in _series(_monitoring_exposition()).items():
        exported.setdefault(name, set()).update(labels)
    # counters that appear once something was dropped: declared in the service
    for name in re.findall(r'name="(kubecycle_[a-z_]+)"', SERVICE.read_text()):
        exported.setdefault(f"{name}_total", set()).add("reason")
    return exported


def test_every_query_uses_exported_metrics_and_labels(served):
    exported = _exported(served)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    assert len(queries) >= 15
    for query in queries:
        names = METRIC.findall(query)
        assert names, query
        labels = {label.strip() for group in BY.findall(query) for label in group.split(",")}
        labels |= set(MATCHER.findall(query)) - {"le"}
        labels |= set(re.findall(r"label_values\([a-z_]+, ([a-z_]+)\)", query))
        for name in names:
            assert name in exported, f"{name} in {query!r} is not exported"
        known = set().union(*(exported[n] for n in names)) | {"le"}
        assert labels <= known, f"labels {labels - known} of {query!r} are not exported"
