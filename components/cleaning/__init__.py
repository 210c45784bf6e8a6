"""Stage 5b, clean the training rows: outlier and label-noise filters, fitted on them only."""
