"""Stage 1, ingest: read CSV, Parquet, an HTTP(S) URL or a SQL query into a table."""
