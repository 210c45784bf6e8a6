from datetime import UTC

import numpy as np
import pandas as pd
import pytest

from kubecycle.components.validate.core import clean, infer_task, numpy_dtypes
from kubecycle.contract import column_kind
from kubecycle.errors import DataValidationError


def test_clean_counts_duplicates_and_missing_targets(penguins):
    frame = pd.concat([penguins, penguins.head(5)], ignore_index=True)
    frame.loc[10, "species"] = None
    result = clean(frame, "species")
    assert result.dropped_duplicates == 5
    assert result.dropped_missing_target == 1
    assert len(result.frame) == len(penguins) - 1
    assert result.task == "classification"
    assert result.contract.classes == ["Adelie", "Chinstrap", "Gentoo"]


def test_pandas_extension_dtypes_become_numpy_dtypes_with_their_kinds():
    frame = pd.DataFrame({
        "count": pd.array([1, None, 3, 4], dtype="Int64"),
        "whole": pd.array([1, 2, 3, 4], dtype="Int64"),
        "vip": pd.array([True, None, False, True], dtype="boolean"),
        "paid": pd.array([True, False, False, True], dtype="boolean"),
        "region": pd.array(["n", None, "s", "n"], dtype="string"),
        "tier": pd.Categorical(["a", "b", None, "a"]),
        "label": ["x", "y", "x", "y"],
    })
    normal = numpy_dtypes(frame)
    assert normal["count"].dtype == np.float64 and np.isnan(normal["count"][1])
    assert normal["whole"].dtype == np.int64 and normal["paid"].dtype == bool
    assert normal["vip"].tolist() == [True, None, False, True]
    assert normal["region"].tolist() == ["n", None, "s", "n"]
    assert normal["tier"].tolist() == ["a", "b", None, "a"]
    kinds = {name: spec.kind for name, spec in clean(frame, "label").contract.columns.items()}
    assert kinds == {"count": "numeric", "whole": "numeric", "vip": "boolean", "paid": "boolean",
                     "region": "categorical", "tier": "categorical", "label": "categorical"}
    assert frame["count"].dtype == "Int64"  # the caller's frame is left as it was


def test_decimal_and_date_objects_become_numbers_and_datetimes():
    """Parquet decimal columns and SQL DATE columns arrive as Python objects."""
    from datetime import date, datetime, timedelta, timezone
    from decimal import Decimal

    frame = pd.DataFrame({
        "price": [Decimal("1.50"), None, Decimal("2")],
        "day": [date(2024, 1, 1), None, date(2024, 3, 5)],
        "at": [datetime(2024, 1, 1, 12, tzinfo=UTC), None,
               datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))],
    })
    normal = numpy_dtypes(frame)
    assert normal["price"].dtype == np.float64 and normal["price"][0] == 1.5
    assert normal["day"].dtype == "datetime64[ns]" and normal["day"][2] == pd.Timestamp("2024-03-05")
    assert normal["at"].tolist()[2] == pd.Timestamp("2024-01-01 10:00", tz="UTC")  # both kept
    assert [column_kind(normal[c]) for c in normal] == ["numeric", "datetime", "datetime"]


@pytest.mark.parametrize(
    ("values", "task"),
    [(["a", "b"], "classification"), ([0, 1, 2], "classification"),
     ([True, False], "classification"), ([0.5, 1.7, 2.9], "regression")],
)
def test_infer_task(values, task):
    frame = pd.DataFrame({"y": values * 30 if task != "regression" else
                          np.linspace(0, 100, 90), "x": range(90 if task == "regression"
                                                             else 30 * len(values))})
    assert infer_task(frame, "y") == task
    assert infer_task(frame, None) == "clustering"


@pytest.mark.parametrize(
    ("mutate", "target", "task", "message"),
    [
        (lambda f: f, "nope", None, "target column 'nope' not found"),
        (lambda f: f.iloc[0:0], "species", None, "empty"),
        (lambda f: f.assign(species=None), "species", None, "no rows left"),
        (lambda f: f.assign(species="Adelie"), "species", None, "single class"),
        (lambda f: f.assign(note=np.nan), "species", None, "['note'] hold no values"),
        (lambda f: f, "species", "regression", "is not numeric"),
    ],
)
def test_bad_data_is_rejected_clearly(penguins, mutate, target, task, message):
    with pytest.raises(DataValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        clean(mutate(penguins), target, task)


def test_drop_columns_must_exist(penguins):
    assert "year" not in clean(penguins, "species", drop_columns=["year"]).frame
    with pytest.raises(DataValidationError, match="drop_columns names"):
        clean(penguins, "species", drop_columns=["nope"])
