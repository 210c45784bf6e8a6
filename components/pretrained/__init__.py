"""Stage 7 with models.pretrained: a fitted model in place of tune and train, checked against the data."""
