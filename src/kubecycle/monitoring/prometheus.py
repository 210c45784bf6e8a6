"""Prometheus metrics of a monitoring run, pushed to a Pushgateway for alerting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubecycle.errors import MonitoringError
from kubecycle.monitoring.drift import DriftResult
from kubecycle.monitoring.realized import RealizedPerformance

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

JOB = "kubecycle-monitor"


def monitoring_registry(model_name: str, version: str, drift: DriftResult,
                        quality: dict[str, float], realized: RealizedPerformance | None = None
                        ) -> CollectorRegistry:
    """The gauges of one monitoring pass (what the Grafana dashboard charts).

    Drift share, dataset drift and per-column scores; model quality on the window's labelled
    rows; realized performance of the newest chunk with enough labels.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = ["model", "version"]
    values = [model_name, version]
    Gauge("kubecycle_drift_share", "Share of drifted columns", labels,
          registry=registry).labels(*values).set(drift.share)
    Gauge("kubecycle_dataset_drift", "1 when the share reaches the threshold", labels,
          registry=registry).labels(*values).set(int(drift.dataset_drift))
    Gauge("kubecycle_window_rows", "Rows in the monitored window", labels,
          registry=registry).labels(*values).set(drift.rows)
    column_score = Gauge("kubecycle_column_drift_score", "Drift test score per column",
                         [*labels, "column", "test"], registry=registry)
    column_drifted = Gauge("kubecycle_column_drifted", "1 when the column drifted",
                           [*labels, "column"], registry=registry)
    for name, column in drift.columns.items():
        if column.score == column.score:  # not NaN
            column_score.labels(*values, name, column.test).set(column.score)
        column_drifted.labels(*values, name).set(int(column.drifted))
    model_metric = Gauge("kubecycle_model_quality", "Model quality on labelled window rows",
                         [*labels, "metric"], registry=registry)
    for metric, value in quality.items():
        model_metric.labels(*values, metric).set(value)
    if realized is not None and realized.latest is not None:
        latest = realized.latest
        performance = Gauge("kubecycle_realized_metric", "Realized metric of the newest chunk "
                            "with enough labels", [*labels, "metric"], registry=registry)
        for metric, value in latest.metrics.items():
            performance.labels(*values, metric).set(value)
        Gauge("kubecycle_label_coverage", "Share of that chunk's predictions with a label",
              labels, registry=registry).labels(*values).set(latest.coverage)
        Gauge("kubecycle_label_delay_hours", "Mean hours from prediction to label in that chunk",
              labels, registry=registry).labels(*values).set(latest.delay_hours or 0.0)
        Gauge("kubecycle_realized_below_floor", "1 when the realized metric is past the floor",
              labels, registry=registry).labels(*values).set(int(realized.below_floor))
    return registry


def push_metrics(url: str, model_name: str, version: str, drift: DriftResult,
                 quality: dict[str, float], realized: RealizedPerformance | None = None,
                 timeout: float = 10.0) -> None:
    """Push a monitoring pass's gauges (monitoring_registry) to the Pushgateway at `url`.

    Raises MonitoringError naming the gateway when it cannot be reached or refuses.
    """
    from prometheus_client import push_to_gateway

    registry = monitoring_registry(model_name, version, drift, quality, realized)
    try:
        push_to_gateway(url, job=JOB, registry=registry, timeout=timeout,
                        grouping_key={"model": model_name})
    except OSError as exc:
        raise MonitoringError(f"Pushgateway {url} did not take the metrics ({exc}); check "
                              "--push-metrics, or drop it to skip pushing") from None
