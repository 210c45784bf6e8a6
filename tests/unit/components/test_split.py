import pandas as pd
import pytest

from kubecycle.components.split.core import split_frame
from kubecycle.errors import DataValidationError


def test_stratified_and_seeded(penguins):
    train, test = split_frame(penguins, "species", "classification", 0.25, 7)
    again, _ = split_frame(penguins, "species", "classification", 0.25, 7)
    assert len(train) + len(test) == len(penguins)
    pd.testing.assert_frame_equal(train, again)
    share = penguins.species.value_counts(normalize=True)
    assert (test.species.value_counts(normalize=True) - share).abs().max() < 0.03


def test_rare_class_rejected(penguins):
    frame = pd.concat([penguins, penguins.head(1).assign(species="Emperor")])
    with pytest.raises(DataValidationError, match="Emperor"):
        split_frame(frame, "species", "classification", 0.2, 0)


def test_too_few_rows():
    with pytest.raises(DataValidationError, match="too few"):
        split_frame(pd.DataFrame({"x": [1.0, 2.0]}), None, "clustering", 0.5, 0)
