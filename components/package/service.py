"""BentoML service serving one registered kubecycle model (copied into every bento).

Reads kubecycle_bento.json beside it: the bento model tag, the MLflow name and version,
and the input columns. Bad requests get 400 with the reason, never 500.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import InvalidArgument

INFO = json.loads((Path(__file__).resolve().parent / "kubecycle_bento.json").read_text())
MAX_RECORDS = 10_000


@bentoml.service(traffic={"timeout": 60})
class KubecycleService:
    """Predictions from the packaged model version; name and version in every response."""

    model_ref = bentoml.models.BentoModel(INFO["bento_model"])

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)
        self.columns: list[str] = INFO["columns"]

    @bentoml.api
    def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Predict for a list of records (column name -> raw value)."""
        import pandas as pd

        if not records:
            raise InvalidArgument("records is empty; send at least one record")
        if len(records) > MAX_RECORDS:
            raise InvalidArgument(f"{len(records)} records exceed the limit of {MAX_RECORDS}")
        frame = pd.DataFrame.from_records(records)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InvalidArgument(f"records lack the column(s) {missing}")
        try:
            predictions = self.model.predict(frame[self.columns])
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"the model could not score these records: {exc}") from None
        return {"model_name": INFO["model_name"], "model_version": INFO["model_version"],
                "predictions": [p.item() if hasattr(p, "item") else p for p in predictions]}
