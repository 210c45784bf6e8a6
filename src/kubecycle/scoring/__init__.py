"""Batch scoring runtime: per-row contract checks, the predictor, the atomic output writer."""
