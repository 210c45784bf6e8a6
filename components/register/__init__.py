"""Stage 10, register: log the model to MLflow, register a version, gate the promotion."""
