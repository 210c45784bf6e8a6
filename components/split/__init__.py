"""Stage 4, split: seeded train/test split, stratified for classification."""
