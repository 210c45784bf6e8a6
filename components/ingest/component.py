"""kfp component for the ingest stage."""

from kfp.dsl import Dataset, Output

from kubecycle.components._kfp import stage_component


@stage_component
def ingest_data(raw: Output[Dataset], config: str, labelled: str = "", labelled_window: str = "",
                labelled_until: str = "") -> None:
    """Read the configured source and write it as a Parquet Dataset.

    When `labelled` names a window (retraining: a file, folder or object-store prefix such as
    the inference log), its labelled rows are added to the table.
    """
    from kubecycle.artifacts import write_table
    from kubecycle.components.ingest.core import ingest, with_labelled_rows
    from kubecycle.config import KubecycleConfig
    from kubecycle.monitoring.window import LabelledWindow

    cfg = KubecycleConfig.from_json(config)
    result = ingest(cfg.data.source)
    frame, added = result.frame, 0
    if labelled:
        frame, added = with_labelled_rows(
            frame, cfg.data.target, LabelledWindow(labelled, labelled_window, labelled_until))
    write_table(frame, raw.path)
    raw.metadata.update({"rows": len(frame), "columns": result.columns, "source": result.source,
                         "labelled_rows": added})
