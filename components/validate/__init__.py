"""Stage 2, validate and clean: infer a data contract, check data against one, clean rows."""
