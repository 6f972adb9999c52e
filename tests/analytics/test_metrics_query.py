"""The query layer's answers equal numpy's on the same values, on SQLite and PostgreSQL."""

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def put(org, name, values_at, *, tags=None, metric_type="timer"):
    items = [MetricItem(metric_name=name, value=value, metric_type=metric_type, tags=tags or {}, timestamp=moment)
             for moment, value in values_at]
    return ingest_metric_items(org, items)


def numpy_stats(values):
    array = np.array(values, dtype=float)
    return {"count": len(array), "sum": array.sum(), "avg": array.mean(), "min": array.min(), "max": array.max(),
            "p50": np.percentile(array, 50), "p95": np.percentile(array, 95), "p99": np.percentile(array, 99)}


def assert_stats_equal(stats, expected):
    assert stats.count == expected["count"]
    for field in ("sum", "avg", "min", "max", "p50", "p95", "p99"):
        assert getattr(stats, field) == pytest.approx(expected[field], rel=1e-9), field


def test_statistics_equal_numpy_with_linear_interpolation(personas):
    rng = random.Random(7)
    values = [round(rng.lognormvariate(4, 0.8), 3) for _ in range(997)]
    put(personas.org, "api.response_time",
        [(NOW - timedelta(minutes=i % 600), v) for i, v in enumerate(values)])
    stats = query.statistics("api.response_time", Window(NOW - timedelta(hours=24), NOW), org=personas.org)
    assert_stats_equal(stats, numpy_stats(values))
    assert stats.source == "raw"


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0]])
def test_small_samples_interpolate_like_numpy(personas, values):
    put(personas.org, "m", [(NOW - timedelta(seconds=i + 1), v) for i, v in enumerate(values)])
    stats = query.statistics("m", Window(NOW - timedelta(hours=1), NOW), org=personas.org)
    assert_stats_equal(stats, numpy_stats(values))


def test_window_bounds_and_org_scope(personas):
    put(personas.org, "m", [(NOW - timedelta(hours=2), 1.0), (NOW - timedelta(minutes=30), 2.0)])
    put(personas.other_org, "m", [(NOW - timedelta(minutes=30), 100.0)])
    last_hour = Window(NOW - timedelta(hours=1), NOW)
    assert query.statistics("m", last_hour, org=personas.org).sum == 2.0
    assert query.statistics("m", last_hour, org=query.ALL_ORGS).sum == 102.0
    assert query.statistics("m", Window(NOW - timedelta(hours=3), NOW), org=personas.org).count == 2


def test_an_empty_window_and_an_unknown_name_give_count_0_and_nulls(personas):
    put(personas.org, "m", [(NOW - timedelta(days=3), 1.0)])
    for name in ("m", "never.seen"):
        stats = query.statistics(name, Window(NOW - timedelta(hours=1), NOW), org=personas.org)
        assert stats.count == 0
        assert [stats.sum, stats.avg, stats.min, stats.max, stats.p50, stats.p95, stats.p99] == [None] * 7


def test_tag_filters_are_anded_and_group_by_splits(personas):
    moment = NOW - timedelta(minutes=5)
    put(personas.org, "http", [(moment, 10.0), (moment, 20.0)], tags={"endpoint": "/a", "method": "GET"})
    put(personas.org, "http", [(moment, 30.0)], tags={"endpoint": "/a", "method": "POST"})
    put(personas.org, "http", [(moment, 40.0), (moment, 60.0)], tags={"endpoint": "/b", "method": "GET"})
    window = Window(NOW - timedelta(hours=1), NOW)
    assert query.statistics("http", window, org=personas.org, tags={"endpoint": "/a"}).count == 3
    both = query.statistics("http", window, org=personas.org, tags={"endpoint": "/a", "method": "GET"})
    assert (both.count, both.sum) == (2, 30.0)
    assert query.statistics("http", window, org=personas.org, tags={"endpoint": "/c"}).count == 0

    groups = query.grouped_statistics("http", window, ["endpoint"], org=personas.org)
    by_endpoint = {group.tags["endpoint"]: group for group in groups}
    assert set(by_endpoint) == {"/a", "/b"}
    assert_stats_equal(by_endpoint["/a"], numpy_stats([10, 20, 30]))
    assert_stats_equal(by_endpoint["/b"], numpy_stats([40, 60]))
    two_keys = query.grouped_statistics("http", window, ["endpoint", "method"], org=personas.org,
                                        tags={"method": "GET"})
    assert sorted((g.tags["endpoint"], g.tags["method"], g.count) for g in two_keys) == [
        ("/a", "GET", 2), ("/b", "GET", 2)]


def test_time_series_has_one_point_per_aligned_bucket_with_nulls(personas):
    start = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    end = datetime(2026, 11, 23, 12, 10, tzinfo=UTC)
    put(personas.org, "m", [
        (datetime(2026, 11, 23, 9, 45, tzinfo=UTC), 1.0),
        (datetime(2026, 11, 23, 9, 50, tzinfo=UTC), 3.0),
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), 7.0),
        (datetime(2026, 11, 23, 11, 59, 59, tzinfo=UTC), 9.0),
    ])
    series = query.time_series("m", Window(start, end), interval="1h", aggregate="avg", org=personas.org)
    assert [(moment.hour, value) for moment, value in series.points] == [
        (9, 2.0), (10, None), (11, 8.0), (12, None)]
    counts = query.time_series("m", Window(start, end), interval="1h", aggregate="count", org=personas.org)
    assert [value for _, value in counts.points] == [2, None, 2, None]
    p95 = query.time_series("m", Window(start, end), interval="1h", aggregate="p95", org=personas.org)
    assert p95.points[0][1] == pytest.approx(np.percentile([1.0, 3.0], 95))
    assert p95.points[2][1] == pytest.approx(np.percentile([7.0, 9.0], 95))


def test_counter_rate_is_per_second(personas):
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    put(personas.org, "jobs", [(start + timedelta(minutes=m), 30.0) for m in range(0, 10)], metric_type="counter")
    series = query.time_series("jobs", Window(start, start + timedelta(minutes=10)), interval="5m",
                               aggregate="rate", org=personas.org)
    # 5 increments of 30 in each 5-minute bucket: 150 / 300 s.
    assert [value for _, value in series.points[:2]] == [0.5, 0.5]
    stats = query.statistics("jobs", Window(start, start + timedelta(minutes=10)), org=personas.org)
    assert query.aggregate_value(stats, "rate", Window(start, start + timedelta(minutes=10))) == 0.5


def test_daily_and_6h_buckets_are_utc_multiples_of_the_interval(personas):
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
    for interval, seconds in (("1d", 86400), ("6h", 21600)):
        series = query.time_series("m", window, interval=interval, org=personas.org)
        assert all(int(moment.timestamp()) % seconds == 0 for moment, _ in series.points)
        assert series.points[0][0] <= window.start < series.points[0][0] + timedelta(seconds=seconds)


def test_weekly_buckets_are_iso_weeks_starting_on_monday(personas):
    sunday_night = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)  # a Sunday
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    put(personas.org, "m", [(sunday_night, 1.0), (monday, 5.0), (monday + timedelta(days=6, hours=23), 7.0)])
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    series = query.time_series("m", window, interval="1w", aggregate="sum", org=personas.org)
    assert all(moment.isoweekday() == 1 and moment.time() == datetime.min.time() for moment, _ in series.points)
    values = dict(series.points)
    assert values[datetime(2026, 11, 16, tzinfo=UTC)] == 1.0  # the week of Monday 16th ends on Sunday 22nd
    assert values[monday] == 12.0
    assert series.points[0][0] == datetime(2026, 10, 26, tzinfo=UTC)  # the Monday before the 1st (a Sunday)


def test_list_metrics(personas):
    put(personas.org, "a.metric", [(NOW, 1.0)], tags={"x": "1"})
    put(personas.org, "a.metric", [(NOW, 1.0)], tags={"x": "2"})
    put(personas.other_org, "b.metric", [(NOW, 1.0)], metric_type="gauge")
    infos = query.list_metrics(org=personas.org)
    assert [(i.name, i.metric_type, i.series) for i in infos] == [("a.metric", "timer", 2)]
    assert {i.name for i in query.list_metrics()} == {"a.metric", "b.metric"}


def test_a_metric_of_hundreds_of_series_is_answered_whole_and_by_tag(personas):
    """More series than psycopg caches statements for as separate parameters (one array on PostgreSQL)."""
    rng = random.Random(3)
    values = {host: [round(rng.uniform(1, 500), 2) for _ in range(4)] for host in range(300)}
    for host, host_values in values.items():
        put(personas.org, "wide", [(NOW - timedelta(minutes=minute), value)
                                   for minute, value in enumerate(host_values)], tags={"host": f"h{host:03d}"})
    window = Window(NOW - timedelta(hours=1), NOW)
    everything = [value for host_values in values.values() for value in host_values]
    assert_stats_equal(query.statistics("wide", window, org=personas.org), numpy_stats(everything))
    groups = query.grouped_statistics("wide", window, ["host"], org=personas.org)
    assert len(groups) == 300
    assert_stats_equal(next(group for group in groups if group.tags["host"] == "h123"), numpy_stats(values[123]))
    series = query.time_series("wide", window, interval="15m", aggregate="count", org=personas.org)
    assert sum(value or 0 for _, value in series.points) == 1200
