"""The streaming engine against scipy and against Evidently's DataDriftPreset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kubecycle.contract import column_kind, drift_kind
from kubecycle.monitoring.drift import DriftEngine, DriftResult
from kubecycle.monitoring.report import evidently_drift
from kubecycle.reference import ReferenceStats, build_reference


def detect_drift(reference: ReferenceStats, chunks, drift_share: float = 0.5) -> DriftResult:
    """The engine over every chunk, as monitoring runs it."""
    engine = DriftEngine(reference, drift_share)
    for chunk in chunks:
        engine.add(chunk)
    return engine.result()


def chunks(frame: pd.DataFrame, size: int = 997):
    return (frame.iloc[i:i + size] for i in range(0, len(frame), size))


def make(rows: int, seed: int, shift: float = 0.0, skew: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "normal": rng.normal(shift, 1, rows),
        "lognormal": rng.lognormal(0 + shift, 1, rows),
        "uniform": rng.uniform(0, 10 + 10 * shift, rows),
        "counts": rng.poisson(3 + 2 * shift, rows),
        "levels": rng.integers(0, 3, rows),  # a numeric column with 3 values
        "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5 - skew, 0.3, 0.2 + skew]),
        "flag": rng.choice(["yes", "no"], rows, p=[0.8 - skew, 0.2 + skew]),
        "steady": rng.normal(0, 1, rows),
    })
    frame.loc[rng.random(rows) < 0.05, "normal"] = np.nan
    return frame


@pytest.mark.parametrize(
    ("ref_rows", "cur_rows", "shift", "skew"),
    [
        (800, 600, 0.0, 0.0),      # small reference: KS / chi-square / Z, no drift
        (800, 5000, 0.15, 0.1),    # small reference, drifted window
        (900, 30000, 0.05, 0.03),  # small reference, big window (asymptotic KS)
        (5000, 20000, 0.0, 0.0),   # large reference: Wasserstein / Jensen-Shannon
        (5000, 50000, 0.2, 0.12),  # large reference, drifted
        (3000, 8000, 0.08, 0.05),  # near the thresholds
    ],
)
def test_engine_agrees_with_evidently(ref_rows, cur_rows, shift, skew):
    reference = make(ref_rows, 1)
    current = make(cur_rows, 2, shift, skew)
    kinds = {c: drift_kind(column_kind(reference[c])) for c in reference}
    ours = detect_drift(build_reference(reference), chunks(current))
    theirs = evidently_drift(reference, current, kinds)
    assert set(theirs) == set(ours.columns)
    for name, column in ours.columns.items():
        expected = theirs[name]
        assert column.drifted == expected.drifted, (name, column, expected)
        assert column.score == pytest.approx(expected.score, rel=0.02, abs=0.002), name


def test_statistics_match_scipy_exactly():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.lognormal(size=4000)})
    current = pd.DataFrame({"x": rng.lognormal(size=60000) + 0.1})
    engine = DriftEngine(build_reference(reference))
    for chunk in chunks(current, 4096):
        engine.add(chunk)
    window = engine.windows["x"]
    assert window.ks_statistic() == pytest.approx(stats.ks_2samp(reference.x, current.x)[0])
    assert window.wasserstein() == pytest.approx(
        stats.wasserstein_distance(reference.x, current.x), rel=1e-3)


def test_dataset_drift_share_and_reference_round_trip():
    reference = make(2000, 1)
    current = make(4000, 2, shift=0.5, skew=0.2)
    stats_dict = build_reference(reference).to_dict()
    result = detect_drift(ReferenceStats.from_dict(stats_dict), chunks(current), drift_share=0.5)
    assert "steady" not in result.drifted_columns
    assert set(result.drifted_columns) >= {"normal", "lognormal", "colour"}
    assert result.dataset_drift and result.share >= 0.5
    assert result.to_dict()["columns"]["normal"]["missing_share"] == pytest.approx(0.05, abs=0.02)


def test_empty_and_unseen_values():
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 10, "c": ["a", "b"] * 15})
    current = pd.DataFrame({"x": [np.nan] * 5, "c": ["zzz"] * 5})
    result = detect_drift(build_reference(reference), [current])
    assert result.columns["x"].test == "empty" and not result.columns["x"].drifted
    assert result.columns["x"].missing_share == 1.0
    assert result.columns["c"].drifted  # a category never seen before


def test_reference_column_without_values():
    reference = pd.DataFrame({"x": [np.nan] * 20, "y": np.arange(20.0)})
    result = detect_drift(build_reference(reference), [pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})])
    assert result.columns["x"].test == "empty" and not result.columns["x"].drifted
