"""Which families a run tunes: task, data size and installed extras, each with its reason."""

import pytest

from kubecycle import selection
from kubecycle.catalog import MLP_MIN_ROWS, TORCH_MIN_ROWS
from kubecycle.errors import ConfigError
from kubecycle.selection import choose_families, selected_families


def test_default_search_skips_the_neural_network_on_small_data():
    small = choose_families("classification", MLP_MIN_ROWS - 1)
    assert selected_families(small) == ["logistic_regression", "random_forest", "gradient_boosting",
                                        "lightgbm", "xgboost"]
    [mlp] = [c for c in small if c.family == "mlp"]
    assert mlp.reason.startswith(f"{MLP_MIN_ROWS - 1} rows, fewer than the {MLP_MIN_ROWS}")
    large = choose_families("regression", MLP_MIN_ROWS)
    assert "mlp" in selected_families(large)
    assert {c.family: c.reason for c in large}["mlp"] == (
        f"default search for regression: {MLP_MIN_ROWS} rows >= {MLP_MIN_ROWS}")


def test_configured_families_run_whatever_the_size_and_other_tasks_are_named():
    choices = choose_families("classification", 50, ["mlp", "kmeans", "ridge"])
    assert [(c.family, c.selected) for c in choices] == [("mlp", True), ("kmeans", False),
                                                         ("ridge", False)]
    assert choices[0].reason == "listed in models.families"
    assert choices[1].reason == "a clustering family; the task is classification"
    assert choices[2].reason == "a regression family; the task is classification"


def test_missing_package_is_skipped_with_the_install_line(monkeypatch):
    real = selection._installed
    monkeypatch.setattr(selection, "_installed", lambda module: module != "xgboost" and real(module))
    choices = {c.family: c for c in choose_families("regression", 100)}
    assert not choices["xgboost"].selected
    assert choices["xgboost"].reason == "xgboost is not installed (pip install xgboost)"
    with pytest.raises(ConfigError, match=r"models.families: no family can run for regression "
                                          r"\(xgboost: xgboost is not installed"):
        choose_families("regression", 100, ["xgboost"])


def test_minibatch_kmeans_only_when_configured():
    assert selected_families(choose_families("clustering", 10_000)) == ["kmeans", "gaussian_mixture"]
    [choice] = [c for c in choose_families("clustering", 10) if c.family == "minibatch_kmeans"]
    assert choice.reason == "not in the default search; list it in models.families"


def test_the_torch_network_needs_large_data_and_its_extra(monkeypatch):
    small = {c.family: c for c in choose_families("classification", TORCH_MIN_ROWS - 1)}
    assert not small["torch"].selected
    assert small["torch"].reason.startswith(f"{TORCH_MIN_ROWS - 1} rows, fewer than the")
    assert "torch" in selected_families(choose_families("regression", TORCH_MIN_ROWS))
    real = selection._installed
    monkeypatch.setattr(selection, "_installed", lambda module: module != "torch" and real(module))
    large = {c.family: c for c in choose_families("classification", TORCH_MIN_ROWS)}
    assert large["torch"].reason == "torch is not installed (pip install 'kubecycle[torch]')"
