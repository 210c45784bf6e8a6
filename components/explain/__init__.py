"""Stage 9, explain: SHAP global feature importance and a summary plot."""
