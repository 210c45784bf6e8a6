"""Opens the MLflow parent run that every stage of one pipeline run logs under."""
