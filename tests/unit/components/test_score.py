"""Batch scoring against versions registered on a real MLflow server process."""

import os
import signal

import mlflow
import numpy as np
import pandas as pd
import pytest

from kubecycle.components.score.core import ScoringStopped, score_batch
from kubecycle.config import parse_config
from kubecycle.errors import DataValidationError
from kubecycle.examples import EXAMPLES_DIR
from kubecycle.tracking import connect


@pytest.fixture(scope="module")
def registered(mlflow_server, register_model, make_mixed):
    """A penguins classifier and a regressor on mixed columns (dates, booleans, ids)."""
    penguins = pd.read_csv(EXAMPLES_DIR / "penguins.csv")
    return {"penguins": register_model(penguins, mlflow_server, "score-penguins", "species",
                                  "classification", "f1", "logistic_regression"),
            "mixed": register_model(make_mixed(400).drop(columns="churn"), mlflow_server,
                               "score-mixed", "amount", "regression", "rmse", "random_forest")}


def _cfg(name, **scoring):
    return parse_config({"data": {"source": "x.csv"}, "mlflow": {"model_name": name},
                         "scoring": scoring})


def _model(name):
    return mlflow.sklearn.load_model(f"models:/{name}@champion")


def test_classifier_scores_with_probabilities_and_rejects_bad_rows(registered, mlflow_server,
                                                                    tmp_path):
    connect(mlflow_server)
    rows = registered["penguins"].reset_index(drop=True)
    broken = rows.head(2).astype(object).assign(island=["Atlantis", "Biscoe"],
                                                bill_length_mm=["39.0", "long"])
    rows.pipe(lambda f: pd.concat([f, broken])).to_csv(tmp_path / "in.csv", index=False)
    result = score_batch(_cfg("score-penguins", max_reject_share=0.1), str(tmp_path / "in.csv"),
                         str(tmp_path / "out.parquet"))
    assert (result.rows, result.scored, result.rejected) == (len(rows) + 2, len(rows), 2)
    assert result.runtime == "onnx" and result.model_version == "1"
    out = pd.read_parquet(result.output)
    model = _model("score-penguins")
    assert out["prediction"].tolist() == model.predict(rows).tolist()
    probabilities = out[[f"probability_{c}" for c in model.classes_]].to_numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(rows), atol=1e-5)
    assert (out["model_name"] == "score-penguins").all() and (out["model_version"] == "1").all()
    assert out.columns[:len(rows.columns)].tolist() == rows.columns.tolist()
    rejects = pd.read_parquet(result.rejects)
    assert rejects["reject_reason"].tolist() == [
        "island: 'Atlantis' is not a known category (Biscoe, Dream, Torgersen)",
        "bill_length_mm: 'long' is not a number"]


@pytest.mark.parametrize("runtime", ["auto", "sklearn"])
def test_a_folder_in_chunks_with_id_columns_equals_one_pass_on_the_pipeline(
        registered, mlflow_server, tmp_path, runtime):
    connect(mlflow_server)
    rows = registered["mixed"].reset_index(drop=True)
    (tmp_path / "in").mkdir()
    for index, part in enumerate(np.array_split(rows, 3)):
        part.to_parquet(tmp_path / "in" / f"part-{index}.parquet", index=False)
    result = score_batch(_cfg("score-mixed", id_columns=["customer_id"], chunk_rows=17,
                              runtime=runtime), str(tmp_path / "in"), str(tmp_path / "out.csv"))
    assert result.runtime == ("onnx" if runtime == "auto" else "sklearn"), result.runtime_reason
    assert result.rejected == 0
    out = pd.read_csv(result.output)
    assert out.columns.tolist() == ["customer_id", "prediction", "model_name", "model_version"]
    assert out["customer_id"].tolist() == rows["customer_id"].tolist()
    np.testing.assert_allclose(out["prediction"], _model("score-mixed").predict(rows), rtol=1e-5)
    assert pd.read_csv(result.rejects).columns.tolist()[-1] == "reject_reason"


def test_too_many_rejects_fail_the_run_and_publish_only_the_rejects(registered, mlflow_server,
                                                                     tmp_path):
    connect(mlflow_server)
    rows = registered["penguins"].head(10).assign(island="Atlantis")
    rows.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataValidationError, match=r"10 of 10 rows \(100.0%\) break the model's "
                       r"data contract, more than scoring.max_reject_share 1.0%; nothing was "
                       r"written to .*out.csv; the rows and reasons are in .*out.rejects.csv"):
        score_batch(_cfg("score-penguins"), str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.rejects.csv"]


def test_a_missing_input_or_id_column_is_named_and_nothing_is_written(registered, mlflow_server,
                                                                      tmp_path):
    connect(mlflow_server)
    registered["penguins"].drop(columns="island").to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataValidationError, match=r"in.csv lacks the model's input columns "
                                                  r"\['island'\]"):
        score_batch(_cfg("score-penguins"), str(tmp_path / "in.csv"), str(tmp_path / "o.csv"))
    registered["penguins"].to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataValidationError, match=r"lacks the id columns \['penguin_id'\]"):
        score_batch(_cfg("score-penguins", id_columns=["penguin_id"]), str(tmp_path / "in.csv"),
                    str(tmp_path / "o.csv"))
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_sigterm_stops_at_a_chunk_boundary_and_publishes_nothing(registered, mlflow_server,
                                                                 tmp_path):
    connect(mlflow_server)
    registered["penguins"].to_csv(tmp_path / "in.csv", index=False)
    seen = []

    def on_progress(done, total):
        seen.append(done)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # what a node drain sends the job's pod

    with pytest.raises(ScoringStopped, match=r"stopped by SIGTERM after 10 rows; nothing was "
                                             r"written to .*out.parquet"):
        score_batch(_cfg("score-penguins", chunk_rows=10), str(tmp_path / "in.csv"),
                    str(tmp_path / "out.parquet"), on_progress=on_progress)
    assert seen == [10] and [p.name for p in tmp_path.iterdir()] == ["in.csv"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back


def test_a_packaged_version_scores_with_the_graph_it_recorded(registered, mlflow_server, tmp_path):
    from kubecycle.registry import load_contract, load_test_rows, resolve_version
    from kubecycle.serving.bento import package_version

    connect(mlflow_server)
    version = resolve_version("score-mixed/1", "")
    package_version(_model("score-mixed"), "score-mixed", "1", load_contract(version),
                    test=load_test_rows(version))
    rows = registered["mixed"]
    rows.to_parquet(tmp_path / "in.parquet")
    result = score_batch(_cfg("score-mixed"), str(tmp_path / "in.parquet"),
                         str(tmp_path / "out.parquet"))
    assert result.runtime == "onnx" and "recorded when packaged" in result.runtime_reason
    np.testing.assert_allclose(pd.read_parquet(result.output)["prediction"],
                               _model("score-mixed").predict(rows), rtol=1e-5)


def test_object_store_input_and_output(registered, mlflow_server, s3_bucket):
    import pyarrow.fs as fs

    connect(mlflow_server)
    rows = registered["penguins"].reset_index(drop=True)
    filesystem, base = fs.FileSystem.from_uri(f"{s3_bucket}/incoming")
    for index, part in enumerate(np.array_split(rows, 2)):
        with filesystem.open_output_stream(f"{base}/part-{index}.parquet") as handle:
            part.to_parquet(handle, index=False)
    result = score_batch(_cfg("score-penguins"), f"{s3_bucket}/incoming/",
                         f"{s3_bucket}/scores/penguins.parquet")
    assert result.scored == len(rows) and result.output == f"{s3_bucket}/scores/penguins.parquet"
    _, key = fs.FileSystem.from_uri(result.output)
    with filesystem.open_input_file(key) as handle:
        assert pd.read_parquet(handle)["prediction"].tolist() == _model(
            "score-penguins").predict(rows).tolist()
    _, rejects = fs.FileSystem.from_uri(result.rejects)
    assert filesystem.get_file_info(rejects).type == fs.FileType.File
