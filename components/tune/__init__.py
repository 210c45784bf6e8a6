"""Stage 6, tune: cross-validated hyperparameter search per model family (Optuna)."""
