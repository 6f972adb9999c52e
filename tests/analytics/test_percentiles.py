"""The one exact percentile of the Python code: numpy's linear interpolation, alone and per group."""

import numpy as np
import pytest

from analytics.services.percentiles import percentile, percentiles, percentiles_of_sorted_groups
from analytics.services.rollups import PERCENTILE_FRACTIONS, _grouped_rows
from monitoring.services import sla

FRACTIONS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 20, 101, 1000])
def test_percentiles_are_numpys(size):
    values = np.random.default_rng(size).lognormal(3, 1, size).tolist()
    expected = np.percentile(values, [100 * f for f in FRACTIONS])
    assert percentiles(values, FRACTIONS) == pytest.approx(expected.tolist(), rel=1e-12)
    assert percentile(values, 0.95) == pytest.approx(float(np.percentile(values, 95)), rel=1e-12)
    assert isinstance(percentile(values, 0.5), float)


def test_no_values_have_no_percentile():
    assert percentile([], 0.5) is None
    assert percentiles((), [0.5, 0.95]) == [None, None]


def test_the_sla_figures_use_the_same_definition():
    values = [120.0, 80.0, 95.5, 300.0, 101.0]
    assert sla.percentile(values, 95) == percentile(values, 0.95)


def test_the_grouped_form_agrees_with_numpy_per_group():
    rng = np.random.default_rng(4)
    groups = [np.sort(rng.normal(100, 30, size)) for size in (1, 2, 3, 7, 50, 999)]
    values = np.concatenate(groups)
    starts = np.cumsum([0] + [group.size for group in groups[:-1]])
    answers = percentiles_of_sorted_groups(values, starts, FRACTIONS)
    for index, fraction in enumerate(FRACTIONS):
        expected = [np.percentile(group, 100 * fraction) for group in groups]
        assert answers[index].tolist() == pytest.approx(expected, rel=1e-12)


def test_rollup_rows_store_the_exact_percentiles():
    rng = np.random.default_rng(9)
    groups, buckets = rng.integers(0, 4, 2000), rng.integers(0, 3, 2000) * 60
    values = np.round(rng.lognormal(4, 1, 2000), 3)
    for group, bucket, count, _, _, _, *stored, _ in _grouped_rows(groups, buckets, values):
        mine = values[(groups == group) & (buckets == bucket)]
        assert count == mine.size
        assert stored == pytest.approx([np.percentile(mine, 100 * f) for f in PERCENTILE_FRACTIONS], rel=1e-12)
