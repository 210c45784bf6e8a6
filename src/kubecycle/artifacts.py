"""Reading and writing what moves between stages: Parquet tables and JSON documents."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def write_json(path: str | Path, document: Any) -> Path:
    """Write JSON atomically (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet (index dropped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet table as a DataFrame."""
    return pd.read_parquet(path)
