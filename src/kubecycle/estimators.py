"""Estimators the catalog adds to scikit-learn's, importable where a registered model is loaded.

XGBoost's classifier learns only the labels 0..n-1; `XGBLabelClassifier` takes any labels,
as every scikit-learn classifier does, and predicts them back. Registered models pickle it by
this module path, so it ships with them (MLflow code_paths, the bento) like the transformers.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier


class XGBLabelClassifier(XGBClassifier):
    """XGBClassifier for any class labels: strings, booleans, integers not starting at 0."""

    def fit(self, X, y, **kwargs):
        """Encode the labels as 0..n-1 and fit; `classes_` holds the labels themselves."""
        encoder = LabelEncoder().fit(np.asarray(y))
        self.__dict__.pop("label_encoder_", None)  # XGBoost's fit compares classes_ with codes
        super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        self.label_encoder_ = encoder
        return self

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the order of predict_proba's columns."""
        encoder = self.__dict__.get("label_encoder_")
        return encoder.classes_ if encoder is not None else np.arange(self.n_classes_)

    def predict(self, X, **kwargs):
        """The predicted labels, in the labels' own type."""
        codes = np.asarray(super().predict(X, **kwargs)).astype(int)
        return self.label_encoder_.classes_[codes]
