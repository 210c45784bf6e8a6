"""Stage 11, package: a BentoML bento built from a registered model version."""
