"""Stage 7, select and train: pick the best family by CV score and refit on all training rows."""
