"""How the model Pipeline encodes raw values, shared by the Pipeline and the ONNX feed.

Constants only (no scikit-learn): serving and batch scoring on ONNX Runtime import this
without loading scikit-learn and SciPy.
"""

DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour")  # what DatetimeExpander extracts
MISSING_TEXT = "__missing__"  # what the text imputers fill in for NaN or None
