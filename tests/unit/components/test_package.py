"""A bento built from a model serves it over HTTP with `bentoml serve`."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kubecycle.components.features.core import plan_features
from kubecycle.components.package.core import bento_name, build_bento
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.tune.core import TuneResult
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.tracking import free_port


def test_bento_name():
    assert bento_name("Penguins Species/v1") == "penguins-species-v1"


@pytest.mark.slow
def test_exported_bento_serves_predictions_from_a_clean_store(mixed, tmp_path):
    result = clean(mixed, "churn")
    plan = plan_features(result.contract, FeatureConfig())  # includes a datetime column
    model = fit_final(plan, select_best([TuneResult("random_forest", "f1",
                                                    {"n_estimators": 10}, 0, 0)]),
                      result.frame, 0)
    columns = [c for c in mixed.columns if c != "churn"]
    packaged = build_bento(model, "Churn", "7", columns, export_dir=tmp_path / "export")
    assert packaged.bento_tag.startswith("churn:")
    assert Path(packaged.export_path).is_file()

    clean_home = tmp_path / "fresh-bentoml"  # import the archive into an empty store
    env = {**os.environ, "BENTOML_HOME": str(clean_home)}
    bentoml = [str(Path(sys.executable).parent / "bentoml")]
    subprocess.run([*bentoml, "import", packaged.export_path], env=env, check=True,
                   capture_output=True)
    port = free_port()
    server = subprocess.Popen([*bentoml, "serve", packaged.bento_tag, "--host", "127.0.0.1",
                               "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "bentoml serve did not become ready"
            assert server.poll() is None, "bentoml serve exited"
            time.sleep(0.5)
        records = mixed[columns].head(3).astype(object).where(mixed[columns].head(3).notna(),
                                                               None).to_dict("records")
        answer = requests.post(f"{base}/predict", json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_name"] == "Churn" and body["model_version"] == "7"
        assert body["predictions"] == model.predict(mixed[columns].head(3)).tolist()
        bad = requests.post(f"{base}/predict", json={"records": [{"x1": 1.0}]}, timeout=30)
        assert bad.status_code == 400 and "lack the column" in bad.text
        empty = requests.post(f"{base}/predict", json={"records": []}, timeout=30)
        assert empty.status_code == 400
    finally:
        server.terminate()
        server.wait(timeout=30)
