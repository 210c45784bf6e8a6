"""Shared fixtures: data sets of several shapes, and real servers (MLflow, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubecycle.examples import EXAMPLES_DIR


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test writes under its own KUBECYCLE_HOME (and BentoML store)."""
    monkeypatch.setenv("KUBECYCLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home" / "bentoml"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("KUBECYCLE_TRACKING_URI", raising=False)


@pytest.fixture
def penguins() -> pd.DataFrame:
    return pd.read_csv(EXAMPLES_DIR / "penguins.csv")


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical, boolean, datetime and ID columns, missing values, an
    imbalanced string label and a numeric target."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(0, 10, size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(rows)],
        "x1": x1,
        "x2": np.where(rng.random(rows) < 0.1, np.nan, x2),
        "colour": np.where(rng.random(rows) < 0.05, None, colour),
        "member": rng.random(rows) < 0.3,
        "signup": pd.date_range("2021-01-01", periods=rows, freq="D").astype(str),
        "constant": 1,
    })
    score = 2 * x1 + 0.5 * x2 + (colour == "red") * 1.5 + rng.normal(scale=0.3, size=rows)
    frame["amount"] = score
    frame["churn"] = np.where(score > np.quantile(score, 0.8), "yes", "no")  # 20% positives
    return frame


@pytest.fixture
def mixed() -> pd.DataFrame:
    return mixed_frame()


@pytest.fixture
def make_mixed():
    return mixed_frame


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` process on 127.0.0.1 for the whole session."""
    from kubecycle.tracking import local_server

    home = tmp_path_factory.mktemp("mlflow-home")
    with local_server(home) as url:
        yield url


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed; run `make system-deps`")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A real PostgreSQL server started for the session (initdb refuses root: run as postgres)."""
    from kubecycle.tracking import free_port

    bindir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="kubecycle-pg-"))
    shutil.chown(folder, "postgres", "postgres") if os.geteuid() == 0 else None
    data = folder / "data"
    port = free_port()

    def as_pg(*cmd: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    subprocess.run(as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kc"),
                   check=True, capture_output=True)
    subprocess.run(as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                         "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "-w",
                         "start"), check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg2://kc@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        import sqlalchemy

        while True:
            try:
                with sqlalchemy.create_engine(url).connect():
                    break
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
