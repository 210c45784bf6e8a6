"""kfp component for the split stage."""

from kfp.dsl import Artifact, Dataset, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def split_data(
    config: str,
    clean: Input[Dataset],
    contract: Input[Artifact],
    train: Output[Dataset],
    test: Output[Dataset],
) -> None:
    """Seeded train/test split (stratified for classification)."""
    from kubecycle.artifacts import read_json, read_table, write_table
    from kubecycle.components.split.core import split_frame
    from kubecycle.config import KubecycleConfig

    cfg = KubecycleConfig.from_json(config)
    task = read_json(contract.path)["task"]
    train_frame, test_frame = split_frame(
        read_table(clean.path), cfg.data.target, task, cfg.split.test_size, cfg.split.seed)
    write_table(train_frame, train.path)
    write_table(test_frame, test.path)
    train.metadata["rows"] = len(train_frame)
    test.metadata["rows"] = len(test_frame)
