"""Stage 8, evaluate: held-out test metrics, confusion matrix and an HTML report."""
