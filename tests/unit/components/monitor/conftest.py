"""A registered penguins model (real MLflow server) for the monitoring tests."""

from __future__ import annotations

import re

import mlflow
import pytest

from kubecycle.components.features.core import plan_columns
from kubecycle.components.register.core import register_version
from kubecycle.components.split.core import split_frame
from kubecycle.components.track.core import start_parent_run
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import KubecycleConfig, parse_config
from kubecycle.evaluation import evaluate_model
from kubecycle.modelling import TuneResult


def register_penguins(penguins, server: str, name: str, **monitoring) -> KubecycleConfig:
    cfg = parse_config({"data": {"source": "unused.csv", "target": "species"},
                        "mlflow": {"model_name": name, "experiment": f"exp-{name}"},
                        "monitoring": monitoring})
    mlflow.set_tracking_uri(server)
    mlflow.set_registry_uri(server)
    run_id = start_parent_run(cfg, server)
    cleaned = clean(penguins, "species")
    train, test = split_frame(cleaned.frame, "species", "classification", 0.3, 0)
    plan = plan_columns(cleaned.contract, cfg.features)
    model = fit_final(plan, select_best([TuneResult("random_forest", "f1",
                                                    {"n_estimators": 30}, 0, 0)]), train, 0)
    metrics = evaluate_model(model, test, "species", "classification").metrics
    register_version(model, run_id=run_id, model_name=name, task="classification", metric="f1",
                   test_metrics=metrics, train=train, test=test, target="species",
                   contract=cleaned.contract.with_inputs(plan.dropped), seed=0, min_score=None,
                   min_improvement=0.0)
    return cfg


@pytest.fixture
def make_registered():
    return register_penguins


@pytest.fixture
def registered(penguins, mlflow_server, request):
    name = ("mon-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name))[:60].strip("-")
    return register_penguins(penguins, mlflow_server, name)
