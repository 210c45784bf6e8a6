from pathlib import Path

import pytest

from kubecycle.config import load_config, parse_config
from kubecycle.errors import ConfigError
from kubecycle.examples import DEMO_CONFIG, EXAMPLES_DIR


def test_demo_config_loads_with_defaults():
    cfg = load_config(DEMO_CONFIG)
    assert Path(cfg.data.source).is_file()
    assert cfg.data.target == "species"
    assert cfg.resolved_metric("classification") == "f1"
    chosen = [c.family for c in cfg.family_choices("regression", 5000) if c.selected]
    assert chosen == ["ridge", "random_forest", "gradient_boosting", "lightgbm", "xgboost", "mlp",
                      "torch"]


def test_minimal_config_and_sql_source():
    cfg = parse_config({"data": {"source": {"sql": {"url": "sqlite://", "query": "select 1"}},
                                 "target": "y"}})
    assert cfg.data.source.query == "select 1"
    assert cfg.task is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"data": {"source": "a.csv"}, "tunning": {}}, "tunning: unknown key"),
        ({"data": {"source": "a.csv", "targt": "y"}}, "data.targt: unknown key"),
        ({"data": {"source": "a.csv", "target": "y"}, "split": {"test_size": 1.5}},
         "split.test_size"),
        ({"data": {"source": "a.csv", "target": "y"}, "models": {"families": ["xgboostt"]}},
         "unknown model family ['xgboostt']"),
        ({"data": {"source": "a.csv", "target": "y"}, "metric": "auc"}, "unknown metric 'auc'"),
        ({"data": {"source": "a.csv", "target": "y"}, "task": "regression", "metric": "f1"},
         "metric 'f1' is not a regression metric"),
        ({"data": {"source": "a.csv", "target": "y"}, "tuning": {"strategy": "genetic"}},
         "tuning.strategy"),
        ({"data": {"source": "a.csv"}, "task": "classification"}, "needs data.target"),
        ({"data": {"source": "a.csv", "target": "y"}, "task": "clustering"}, "takes no data.target"),
        ({"data": {"source": "a.csv", "target": "y"},
          "models": {"search_spaces": {"ridge": {"alpha": {"type": "float", "low": 0, "high": 1,
                                                           "log": True}}}}},
         "models.search_spaces.ridge.alpha"),
        ({}, "data: Field required"),
    ],
)
def test_bad_config_names_the_key(raw, named):
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert named in str(caught.value)


def test_relative_source_resolves_against_config_folder(tmp_path):
    (tmp_path / "conf.yaml").write_text("data:\n  source: data/x.csv\n  target: y\n")
    assert load_config(tmp_path / "conf.yaml").data.source == str(tmp_path / "data" / "x.csv")


def test_a_pretrained_model_path_resolves_like_the_source_and_replaces_the_search(tmp_path):
    (tmp_path / "conf.yaml").write_text(
        "data: {source: x.csv, target: y}\nmodels: {pretrained: models/m.skops}\n")
    assert load_config(tmp_path / "conf.yaml").models.pretrained == str(tmp_path / "models" / "m.skops")
    uri = parse_config({"data": {"source": "x.csv", "target": "y"},
                        "models": {"pretrained": "models:/churn/3"}}, base_dir=tmp_path)
    assert uri.models.pretrained == "models:/churn/3"
    with pytest.raises(ConfigError, match=r"models: models\.pretrained skips tuning and training"):
        parse_config({"data": {"source": "x.csv", "target": "y"},
                      "models": {"pretrained": "m.skops", "families": ["ridge"]}})


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml")))
def test_every_example_config_loads(example):
    cfg = load_config(EXAMPLES_DIR / example)
    assert Path(cfg.data.source).is_file()  # relative sources resolve against the examples
