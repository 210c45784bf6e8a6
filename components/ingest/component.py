"""kfp component for the ingest stage."""

from kfp.dsl import Dataset, Output

from kubecycle.components._kfp import stage_component


@stage_component
def ingest_data(raw: Output[Dataset], recent: Output[Dataset], config: str, labelled: str = "",
                labelled_window: str = "", labelled_until: str = "") -> None:
    """Read the configured source and write it as a Parquet Dataset.

    When `labelled` names a window (retraining: a file, folder or object-store prefix such as
    the inference log), its labelled rows are added to the table, except the newest
    `promotion.recent_share` of them: those go to `recent`, held out for the promotion gate
    (empty without a window).
    """
    import pandas as pd

    from kubecycle.artifacts import write_table
    from kubecycle.components.ingest.core import hold_out_newest, ingest, labelled_rows
    from kubecycle.config import KubecycleConfig
    from kubecycle.monitoring.window import LabelledWindow

    cfg = KubecycleConfig.from_json(config)
    result = ingest(cfg.data.source)
    frame, columns = result.frame, list(result.frame.columns)
    held_out = frame.iloc[:0]
    added = 0
    if labelled:
        rows = labelled_rows(columns, cfg.data.target,
                             LabelledWindow(labelled, labelled_window, labelled_until),
                             cfg.monitoring.id_columns)
        training, held_out = hold_out_newest(rows, cfg.promotion.recent_share, cfg.split.seed)
        frame = pd.concat([frame, training[columns]], ignore_index=True) if len(training) else frame
        held_out, added = held_out[columns], len(training)
    write_table(frame, raw.path)
    write_table(held_out, recent.path)
    raw.metadata.update({"rows": len(frame), "columns": result.columns, "source": result.source,
                         "labelled_rows": added})
    recent.metadata["rows"] = len(held_out)
