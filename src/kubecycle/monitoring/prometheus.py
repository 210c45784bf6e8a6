"""Prometheus metrics of a monitoring run, pushed to a Pushgateway for alerting."""

from __future__ import annotations

from kubecycle.errors import MonitoringError
from kubecycle.monitoring.drift import DriftResult

JOB = "kubecycle-monitor"


def push_metrics(url: str, model_name: str, version: str, drift: DriftResult,
                 quality: dict[str, float], timeout: float = 10.0) -> None:
    """Push drift share, dataset drift, per-column scores and model quality to `url`.

    Raises MonitoringError naming the gateway when it cannot be reached or refuses.
    """
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

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
    try:
        push_to_gateway(url, job=JOB, registry=registry, timeout=timeout,
                        grouping_key={"model": model_name})
    except OSError as exc:
        raise MonitoringError(f"Pushgateway {url} did not take the metrics ({exc}); check "
                              "--push-metrics, or drop it to skip pushing") from None
