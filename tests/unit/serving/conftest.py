"""A penguins bento served for a test module (`bentoml serve`, inference log in a folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from kubecycle.components.validate.core import clean
from kubecycle.examples import EXAMPLES_DIR
from kubecycle.tracking import free_port


@pytest.fixture(scope="module")
def served(penguins_bento, module_servers, tmp_path_factory):
    """The server's base URL, host:port, process and inference-log folder, and 25 cleaned
    penguin rows (features only)."""
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(penguins_bento["store"]),
           "KUBECYCLE_INFERENCE_LOG": str(folder / "log")}
    server = module_servers.start([str(Path(sys.executable).parent / "bentoml"), "serve",
                                   penguins_bento["tag"], "--host", "127.0.0.1", "--port",
                                   str(port)], env, port, log=folder / "serve.log")
    rows = clean(pd.read_csv(EXAMPLES_DIR / "penguins.csv"), "species").frame.drop(
        columns="species").head(25).reset_index(drop=True)
    return {"base": f"http://127.0.0.1:{port}", "url": f"127.0.0.1:{port}", "rows": rows,
            "server": server, "log": str(folder / "log")}
