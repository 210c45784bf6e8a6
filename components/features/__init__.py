"""Stage 5, features: a ColumnTransformer planned from column types, part of the model."""
