"""kfp component for the ingest stage."""

from kfp.dsl import Dataset, Output

from kubecycle.components._kfp import stage_component


@stage_component
def ingest_data(config: str, raw: Output[Dataset]) -> None:
    """Read the configured source and write it as a Parquet Dataset."""
    from kubecycle.artifacts import write_table
    from kubecycle.components.ingest.core import ingest
    from kubecycle.config import KubecycleConfig

    cfg = KubecycleConfig.from_json(config)
    result = ingest(cfg.data.source)
    write_table(result.frame, raw.path)
    raw.metadata.update({"rows": result.rows, "columns": result.columns, "source": result.source})
