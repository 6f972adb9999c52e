"""Exact percentiles computed in Python, by the one definition of API.md: linear interpolation
between the closest ranks, numpy's default. For n sorted values and a fraction f, the rank is
r = f * (n - 1) and the answer is v[floor(r)] + (v[floor(r) + 1] - v[floor(r)]) * (r - floor(r)).

    percentile(values, fraction) -> float | None         None for no values
    percentiles(values, fractions) -> list[float | None]
    percentiles_of_sorted_groups(values, starts, fractions) -> list[np.ndarray]   per group, vectorised

The SQL of ``metrics_query`` computes the same definition in the database; the sketch's
quantiles estimate it from bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values, fractions: Sequence[float]) -> list[float | None]:
    """The percentiles of ``values`` (any order) at each fraction in [0, 1]."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return [None for _ in fractions]
    return [float(answer) for answer in np.quantile(array, list(fractions))]


def percentile(values, fraction: float) -> float | None:
    return percentiles(values, [fraction])[0]


def percentiles_of_sorted_groups(values: np.ndarray, starts: np.ndarray,
                                 fractions: Sequence[float]) -> list[np.ndarray]:
    """Per fraction, the percentile of every group of ``values``, by the definition above.

    ``values`` holds the groups one after another, each sorted ascending; ``starts`` are the
    offsets where the groups begin (the first is 0, none is empty). This is ``percentiles`` of
    each group, computed for tens of thousands of small groups at once, as a rollup run needs.
    """
    counts = np.diff(np.append(starts, values.size))
    answers = []
    for fraction in fractions:
        rank = fraction * (counts - 1)
        low = np.floor(rank).astype(np.int64)
        high = np.minimum(low + 1, counts - 1)
        below, above = values[starts + low], values[starts + high]
        answers.append(below + (above - below) * (rank - low))
    return answers
