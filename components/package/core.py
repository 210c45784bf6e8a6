"""Package a registered version: build its bento, export it, and record it on the version.

The bento serves an ONNX graph when one reproduces the model on the registered held-out rows.

The bento itself (build, export, record) is kubecycle.serving.bento's, shared with
`kubecycle serve` and `kubecycle package`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kubecycle.contract import DataContract
from kubecycle.registry import held_out_rows
from kubecycle.serving.bento import PackageResult, package_version


def package_registered(model, registered: dict[str, str], contract: DataContract,
                       test: pd.DataFrame, *, seed: int, export_dir: str | Path,
                       bento_store: str | None, run_id: str) -> PackageResult:
    """Build, export and record the bento of the version the register stage registered.

    Args:
        model: The fitted Pipeline that was registered.
        registered: The register stage's output (model_name, model_version).
        contract: The data contract registered with the version.
        test: The test split (the registered held-out rows are drawn from it with seed).
        seed: The split seed.
        export_dir: The folder of the stage's bento artifact.
        bento_store: deploy.bento_store: where the serving pods import archives from.
        run_id: The training run, tagged with the bento.

    Returns:
        The bento, its export, its URI on the store and the ONNX check.
    """
    return package_version(model, registered["model_name"], registered["model_version"],
                           contract, test=held_out_rows(test, seed), export_dir=export_dir,
                           bento_store=bento_store or None, run_id=run_id)
