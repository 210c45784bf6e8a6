"""Custom scikit-learn transformers that travel inside the model Pipeline.

numpy, pandas and scikit-learn only, plus kubecycle.encoding's constants: the serving bento
and a registered model's code copy both files.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from kubecycle.encoding import DATETIME_PARTS, MISSING_TEXT  # noqa: F401 (the Pipeline's names)


class _ColumnsTransformer(TransformerMixin, BaseEstimator):
    """Stateless per-column transformers: fitting only records the input columns."""

    def fit(self, X, y=None):
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self


class DatetimeExpander(_ColumnsTransformer):
    """Turn datetime (or date-like text) columns into year, month, day, weekday and hour.

    Values with an offset are taken in UTC; what cannot be read as a date becomes a missing
    value.
    """

    def transform(self, X):
        """Expand every column into its DATETIME_PARTS as float64 columns (NaN when missing)."""
        frame = pd.DataFrame(X)
        columns = []
        for name in frame.columns:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # utc=True: mixed offsets become comparable instants; naive values stay as given
                stamps = pd.to_datetime(frame[name], errors="coerce", format="mixed", utc=True)
            stamps = stamps.dt.tz_convert(None)
            for part in DATETIME_PARTS:
                columns.append(getattr(stamps.dt, part).astype("float64").to_numpy())
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        """The output names: `<column>_<part>` for every column and datetime part."""
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{n}_{p}" for n in names for p in DATETIME_PARTS], dtype=object)


class TextColumns(_ColumnsTransformer):
    """Categorical columns of any dtype as text, with None for every kind of missing value.

    Any dtype means bool, pandas category, nullable string or numbers; missing values are NaN,
    None, pd.NA or NaT. The imputers and encoders that follow see one type, as the ONNX feed
    sends it (str of the value).
    """

    def transform(self, X):
        """The columns as an object array of str values, None where a value is missing."""
        frame = pd.DataFrame(X)
        text = np.empty(frame.shape, dtype=object)
        for index, name in enumerate(frame.columns):
            column = frame[name]
            if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in (
                    "string", "empty"):
                values = column.to_numpy(dtype=object, copy=True)  # text already: no str()
            else:
                values = column.astype(str).to_numpy(dtype=object)
            values[column.isna().to_numpy()] = None
            text[:, index] = values
        return text

    def get_feature_names_out(self, input_features=None):
        """The output names: the input column names, unchanged."""
        return np.asarray(self.feature_names_in_ if input_features is None else input_features,
                          dtype=object)
