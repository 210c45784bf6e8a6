"""A pre-trained model in place of tune and train: every format loads, bad ones fail in one line."""

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from kubecycle.components.explain.core import explain_rows
from kubecycle.components.pretrained.core import (
    as_model_pipeline,
    check_fits,
    describe,
    load_pretrained,
)
from kubecycle.errors import PretrainedModelError
from kubecycle.transformers import DatetimeExpander

TREES = ["numpy.dtype", "sklearn.tree._tree.Tree"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture
def numeric(penguins) -> tuple[pd.DataFrame, pd.Series]:
    """Penguins' numeric columns (no missing values) and the species coded 0..2."""
    rows = penguins.dropna(subset=NUMERIC)
    return rows[NUMERIC], rows["species"].astype("category").cat.codes.astype(int)


def _loaded_pipeline(estimator, x, y, task):
    inputs = check_fits(estimator, x, y, task)
    return as_model_pipeline(estimator, inputs, x)


def test_a_skops_pipeline_loads_and_stays_the_model(tmp_path, penguins):
    x, y = penguins.drop(columns=["species"]), penguins["species"]
    model = Pipeline([
        ("columns", ColumnTransformer([
            ("numeric", SimpleImputer(), [*NUMERIC, "year"]),
            ("text", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                   OneHotEncoder(handle_unknown="ignore")), ["island", "sex"])])),
        ("forest", RandomForestClassifier(n_estimators=20, random_state=0))]).fit(x, y)
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    # skops leaves trees to the user to review: they index memory unchecked
    with pytest.raises(PretrainedModelError, match=r"not trusted: \['numpy.dtype', 'sklearn.tree"):
        load_pretrained(str(path))
    loaded = load_pretrained(str(path), trusted_types=TREES)
    assert loaded.format == "skops"
    pipeline = _loaded_pipeline(loaded.estimator, x, y, "classification")
    assert list(pipeline.predict(x)) == list(model.predict(x))
    explanation, _ = explain_rows(pipeline, penguins, "species", "classification")
    assert set(explanation.importance) == set(x.columns)
    assert describe(loaded, "f1")["family"] == "pretrained skops"


def test_untrusted_types_in_a_skops_file_are_named_until_trusted(tmp_path, penguins):
    frame = pd.DataFrame({"day": ["2024-01-02", "2024-03-04"] * 10, "y": [1.0, 2.0] * 10})
    model = make_pipeline(DatetimeExpander())  # kubecycle's own class: trusted
    path = tmp_path / "own.skops"
    skops.io.dump(model.fit(frame[["day"]]), path)
    assert load_pretrained(str(path)).format == "skops"

    foreign = tmp_path / "foreign.skops"
    skops.io.dump({"helper": pd.DataFrame}, foreign)
    with pytest.raises(PretrainedModelError, match=r"not trusted: \[.*DataFrame.*models\.trusted_types"):
        load_pretrained(str(foreign))
    trusted = skops.io.get_untrusted_types(file=foreign)
    assert load_pretrained(str(foreign), trusted_types=trusted).estimator["helper"] is pd.DataFrame


def test_a_pickle_needs_trust(tmp_path, numeric):
    x, y = numeric
    path = tmp_path / "model.joblib"
    joblib.dump(LinearRegression().fit(x, y.astype(float)), path)
    with pytest.raises(PretrainedModelError, match=r"models\.trust_pickle: true"):
        load_pretrained(str(path))
    assert load_pretrained(str(path), trust_pickle=True).format == "joblib"


def test_booster_files_become_estimators_that_predict_as_before(tmp_path, numeric):
    import lightgbm
    import xgboost

    x, y = numeric
    for library, model, path in (
            ("lightgbm", lightgbm.LGBMClassifier(n_estimators=15, verbose=-1), "model.txt"),
            ("xgboost", xgboost.XGBClassifier(n_estimators=15), "model.json"),
            ("xgboost", xgboost.XGBRegressor(n_estimators=15), "model.ubj")):
        target = y if "Classifier" in type(model).__name__ else x["body_mass_g"] / 1000
        features = x if target is y else x.drop(columns=["body_mass_g"])
        model.fit(features, target)
        if library == "lightgbm":
            model.booster_.save_model(tmp_path / path)
        else:
            model.get_booster().save_model(tmp_path / path)  # the bare Booster's file
        loaded = load_pretrained(str(tmp_path / path))
        assert loaded.format == library
        task = "classification" if target is y else "regression"
        pipeline = _loaded_pipeline(loaded.estimator, features, target, task)
        np.testing.assert_allclose(pipeline.predict(features), model.predict(features), rtol=1e-6)
        if task == "classification":
            np.testing.assert_allclose(pipeline.predict_proba(features),
                                       model.predict_proba(features), rtol=1e-6)
            explanation, _ = explain_rows(pipeline, features.assign(y=target), "y", task)
            assert explanation.method == "tree" and set(explanation.importance) == set(NUMERIC)


def test_an_mlflow_uri_loads_the_logged_model(mlflow_server, numeric):
    import mlflow
    import mlflow.sklearn

    x, y = numeric
    model = RandomForestClassifier(n_estimators=5).fit(x, y)
    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="skops", skops_trusted_types=TREES)
        mlflow.sklearn.log_model(model, name="pickled", serialization_format="cloudpickle")
        mlflow.log_dict({"not": "a model"}, "notes/notes.json")
    loaded = load_pretrained(f"runs:/{run.info.run_id}/skops")
    assert loaded.format == "mlflow" and list(loaded.estimator.feature_names_in_) == NUMERIC
    with pytest.raises(PretrainedModelError, match=r"saved as a cloudpickle.*models\.trust_pickle"):
        load_pretrained(f"runs:/{run.info.run_id}/pickled")
    assert load_pretrained(f"runs:/{run.info.run_id}/pickled", trust_pickle=True).estimator
    with pytest.raises(PretrainedModelError, match="could not be loaded as a scikit-learn model"):
        load_pretrained(f"runs:/{run.info.run_id}/notes")
    with pytest.raises(PretrainedModelError, match="MLflow model models:/no-such-model/1"):
        load_pretrained("models:/no-such-model/1")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.skops", None, "missing.skops not found"),
    ("model.onnx", b"\x00", "not a known model format; use one of: skops"),
    ("broken.skops", b"not a zip", "broken.skops could not be read as a .skops model"),
    ("broken.txt", b"tree\nnonsense", "broken.txt could not be read as a .txt model"),
    ("broken.json", b"{}", "broken.json could not be read as a .json model"),
])
def test_unreadable_files_fail_in_one_line(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(PretrainedModelError, match=message) as error:
        load_pretrained(str(tmp_path / name))
    assert "\n" not in str(error.value)


def test_a_model_that_does_not_fit_the_data_is_refused(numeric):
    x, y = numeric
    classifier = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    with pytest.raises(PretrainedModelError, match="is a classifier, the task is regression"):
        check_fits(classifier, x, y.astype(float), "regression")
    with pytest.raises(PretrainedModelError, match=r"lacks the model's input columns \['body_mass_g'\]"):
        check_fits(classifier, x.drop(columns=["body_mass_g"]), y, "classification")
    with pytest.raises(PretrainedModelError, match=r"does not take the data's columns \['extra'\]; "
                                                   "add them to data.drop_columns"):
        check_fits(classifier, x.assign(extra=1.0), y, "classification")
    with pytest.raises(PretrainedModelError, match=r"labels \['Adelie'.*it predicts \['0', '1', '2'\]"):
        check_fits(classifier, x, y.map({0: "Adelie", 1: "Chinstrap", 2: "Gentoo"}), "classification")
    bare = RandomForestClassifier(n_estimators=5).fit(x.to_numpy(), y)
    with pytest.raises(PretrainedModelError, match="fitted on a bare array"):
        check_fits(bare, x, y, "classification")


def test_a_lone_estimator_takes_its_columns_in_its_own_order(numeric):
    x, y = numeric
    model = LinearRegression().fit(x, y.astype(float))
    shuffled = x[list(reversed(NUMERIC))]
    pipeline = _loaded_pipeline(model, shuffled, y.astype(float), "regression")
    np.testing.assert_allclose(pipeline.predict(shuffled), model.predict(x))
    assert list(pipeline[:-1].get_feature_names_out()) == NUMERIC
