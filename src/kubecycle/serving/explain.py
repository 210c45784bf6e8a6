"""Per-column contributions to one prediction: Shapley values by permutation sampling.

For a record x, a background row b and a random order of the columns, the columns are switched
from b's value to x's one by one; each switch's change of the model output is that column's
marginal contribution. Averaged over background rows and (antithetic) orders, these are the
interventional Shapley values that SHAP's PermutationExplainer estimates, on the raw columns
whatever the model (ONNX graph or Pipeline). Along one order the switches add up to
f(x) - f(b) exactly, so the contributions always sum to the output minus the base value (the
mean output over the background) up to floating-point error. Copied into every bento.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERMUTATIONS = 8  # orders per background row, each with its reverse (antithetic)


@dataclass(frozen=True)
class Contributions:
    """The explained output, the base value and each column's contribution."""

    output: float
    base_value: float
    contributions: dict[str, float]


def shapley(output: Callable[[list[dict[str, Any]]], np.ndarray], record: Mapping[str, Any],
            background: Sequence[Mapping[str, Any]], columns: Sequence[str],
            permutations: int = PERMUTATIONS, seed: int = 0) -> Contributions:
    """Shapley values of `record`'s columns for the model output `output` computes.

    Args:
        output: The model output per row (one float each) for a list of raw rows.
        record: The row to explain (column -> value).
        background: Rows standing for "a column's value unknown" (the registered test rows).
        columns: The columns to attribute; others keep the record's value.
        permutations: Random orders per background row; each is also used reversed.
        seed: Seeds the orders, so an explanation is reproducible.
    """
    rng = np.random.default_rng(seed)
    orders = []
    for _ in range(permutations):
        order = rng.permutation(len(columns))
        orders += [order, order[::-1]]
    rows: list[dict[str, Any]] = []
    for base in background:
        for order in orders:
            row = {**record, **{c: base.get(c) for c in columns}}
            rows.append(dict(row))
            for index in order:
                row[columns[index]] = record.get(columns[index])
                rows.append(dict(row))
    values = np.asarray(output([dict(record), *rows]), dtype=float)
    explained, chains = values[0], values[1:].reshape(len(background) * len(orders),
                                                      len(columns) + 1)
    totals = np.zeros(len(columns))
    for chain, order in zip(chains, orders * len(background), strict=True):
        totals[order] += np.diff(chain)
    contributions = totals / len(chains)
    base_value = float(chains[:, 0].mean())
    # the last row of every chain is the record itself; report the record's own output
    return Contributions(float(explained), base_value,
                         {c: float(v) for c, v in zip(columns, contributions, strict=True)})
