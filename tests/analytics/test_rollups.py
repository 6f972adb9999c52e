"""Rollups behind the query layer: every path agrees with the exact answer.

Counts, sums, min and max are exact on every path; percentiles are within 1% of
numpy's (linear interpolation). About 50,000 events over three days.
"""

from datetime import time as datetime_time
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from analytics.models import MetricEvent, MetricRollup, MetricSeries, RollupState, RollupTier
from analytics.platform.collectors import cleanup_old_data
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services import rollup_reads
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.rollups import floor_time, rollup_metrics

HOSTS = ["h1", "h2", "h3"]


class World:
    """Events whose exact answers we know, held in numpy beside the database."""

    def __init__(self, org, count, days=3, seed=5):
        rng = np.random.default_rng(seed)
        self.org = org
        self.now = timezone.now()
        offsets = rng.uniform(90, days * 86400, count)  # none in the last 90 s
        self.times = np.array([(self.now - timedelta(seconds=float(s))).timestamp() for s in offsets])
        self.values = np.round(rng.lognormal(4, 0.9, count), 3)
        self.hosts = rng.integers(0, len(HOSTS), count)
        items = [
            MetricItem("lat", float(v), "timer", "ms", tags={"host": HOSTS[h]},
                       timestamp=self.now - timedelta(seconds=float(s)))
            for v, h, s in zip(self.values, self.hosts, offsets, strict=True)
        ]
        ingest_metric_items(org, items)

    def exact(self, window: Window, host=None):
        mask = (self.times >= window.start.timestamp()) & (self.times <= window.end.timestamp())
        if host is not None:
            mask &= self.hosts == HOSTS.index(host)
        values = self.values[mask]
        return values

    def check(self, stats, window, host=None):
        values = self.exact(window, host)
        assert stats.count == values.size
        assert stats.sum == pytest.approx(values.sum(), rel=1e-9)
        assert stats.min == values.min() and stats.max == values.max()
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            assert getattr(stats, name) == pytest.approx(np.percentile(values, q), rel=0.01), name


@pytest.fixture
def world(personas):
    built = World(personas.org, 50_000)
    rollup_metrics()
    return built


def tiers_used(window):
    ids = MetricSeries.objects.filter(name="lat").values_list("id", flat=True)
    coverage = rollup_reads.Coverage(window.start, window.end, ids)
    return {segment.tier for segment in coverage.plan(window.start, window.end)}


@pytest.mark.django_db
def test_every_path_agrees_with_the_exact_answer(world, settings):
    now = timezone.now()
    # A short window reads raw events: exact.
    short = Window(now - timedelta(minutes=45), now)
    stats = query.statistics("lat", short, org=world.org)
    assert stats.source == "raw"
    world.check(stats, short)

    # Ragged edges: raw seconds, minute rows, hour rows.
    ragged = Window(now - timedelta(hours=6, minutes=17, seconds=23), now - timedelta(minutes=3, seconds=5))
    assert {None, RollupTier.MINUTE, RollupTier.HOUR} <= tiers_used(ragged)
    stats = query.statistics("lat", ragged, org=world.org)
    assert stats.source == "rollup"
    world.check(stats, ragged)

    # Long: day rows too (with hour, minute and raw edges, and the still-open minute).
    long = Window(now - timedelta(days=2, hours=20), now)
    assert {None, RollupTier.MINUTE, RollupTier.HOUR, RollupTier.DAY} <= tiers_used(long)
    world.check(query.statistics("lat", long, org=world.org), long)

    # Minute rows only.
    settings.ANALYTICS_RAW_QUERY_MAX_MINUTES = 0
    minutes = Window(floor_time(now, 3600) - timedelta(minutes=50), floor_time(now, 3600) - timedelta(minutes=10))
    assert tiers_used(minutes) == {RollupTier.MINUTE, None}
    world.check(query.statistics("lat", minutes, org=world.org), minutes)

    # Tag filters and group_by read series rows.
    world.check(query.statistics("lat", long, org=world.org, tags={"host": "h2"}), long, host="h2")
    for group in query.grouped_statistics("lat", long, ["host"], org=world.org):
        assert group.source == "rollup"
        world.check(group, long, host=group.tags["host"])
    # All orgs (staff) read the same name rows.
    world.check(query.statistics("lat", long), long)


@pytest.mark.django_db
def test_counts_without_percentiles_are_summed_by_the_database_and_exact(world):
    """with_percentiles=False reads no sketch: the rows and raw edges are summed in SQL, still exact."""
    now = timezone.now()
    ragged = Window(now - timedelta(days=2, hours=5, minutes=17, seconds=23), now)
    assert {None, RollupTier.MINUTE, RollupTier.HOUR, RollupTier.DAY} <= tiers_used(ragged)
    groups = query.grouped_statistics("lat", ragged, ["host"], org=world.org, with_percentiles=False)
    assert sorted(group.tags["host"] for group in groups) == HOSTS
    for group in groups:
        values = world.exact(ragged, host=group.tags["host"])
        assert group.source == "rollup"
        assert group.count == values.size
        assert group.sum == pytest.approx(values.sum(), rel=1e-9)
        assert (group.min, group.max) == (values.min(), values.max())
        assert group.p50 is None and group.p99 is None  # not asked for, not estimated

    # A time series of counts, whose first and last buckets are planned from raw and finer rows.
    series = query.time_series("lat", ragged, interval="1d", aggregate="count", org=world.org, tags={"host": "h1"})
    assert series.source == "rollup"
    for moment, value in series.points:
        bucket = Window(max(moment, ragged.start), min(moment + timedelta(days=1, microseconds=-1), ragged.end))
        expected = world.exact(bucket, host="h1").size
        assert value == (expected or None), moment


@pytest.mark.django_db
def test_time_series_from_rollups_match_exact_buckets(world):
    now = timezone.now()
    cases = [("1h", 3600, timedelta(days=2)), ("1m", 60, timedelta(hours=3)), ("1d", 86400, timedelta(days=3)),
             ("6h", 21600, timedelta(days=3)), ("15m", 900, timedelta(hours=12)), ("1w", 604800, timedelta(days=3))]
    for interval, seconds, span in cases:
        window = Window(now - span, now)
        for aggregate in ("p95", "count", "avg", "max"):
            series = query.time_series("lat", window, interval=interval, aggregate=aggregate, org=world.org)
            assert series.source == "rollup"
            for moment, value in series.points:
                bucket = Window(max(moment, window.start),
                                min(moment + timedelta(seconds=seconds) - timedelta(microseconds=1), window.end))
                values = world.exact(bucket)
                if values.size == 0:
                    assert value is None
                elif aggregate == "p95":
                    assert value == pytest.approx(np.percentile(values, 95), rel=0.01), (interval, moment)
                elif aggregate == "count":
                    assert value == values.size, (interval, moment)
                elif aggregate == "avg":
                    assert value == pytest.approx(values.mean(), rel=1e-9)
                else:
                    assert value == values.max()


@pytest.mark.parametrize("span, tags", [(timedelta(days=2), None), (timedelta(days=2), {"host": "h2"}),
                                         (timedelta(minutes=30), None)])  # the last: a raw read
def test_several_aggregates_read_at_once_are_each_what_its_own_read_answers(world, span, tags):
    now = timezone.now()
    window = Window(now - span, now)
    interval = "1h" if span > timedelta(hours=1) else "1m"
    together = query.time_series_of("lat", window, interval=interval, aggregates=["p50", "p95", "p99", "count", "avg"],
                                    org=world.org, tags=tags)
    assert list(together) == ["p50", "p95", "p99", "count", "avg"]
    for aggregate, line in together.items():
        alone = query.time_series("lat", window, interval=interval, aggregate=aggregate, org=world.org, tags=tags)
        assert (line.aggregate, line.source) == (aggregate, alone.source)
        assert [moment for moment, _ in line.points] == [moment for moment, _ in alone.points]
        for (_, value), (_, expected) in zip(line.points, alone.points, strict=True):
            # A raw read sums in another order with percentiles than without: the last digit of an avg may differ.
            assert value == (None if expected is None else pytest.approx(expected, rel=1e-12))
    assert together["p95"].source == ("raw" if span < timedelta(hours=1) else "rollup")
    assert sum(value or 0 for _, value in together["count"].points) == world.exact(window, tags and tags["host"]).size
    with pytest.raises(ValueError, match="aggregate must be one of"):
        query.time_series_of("lat", window, interval=interval, aggregates=["p95", "median"], org=world.org)


@pytest.mark.django_db
def test_an_event_is_in_the_answer_as_soon_as_its_post_returns(world, personas):
    # One fixed window for both reads: a rolling one would lose the events sliding out of it meanwhile.
    now = timezone.now()
    window = {"start": (now - timedelta(hours=24)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}
    before = personas.member.get("metrics/lat/statistics", window).json()
    assert before["source"] == "rollup"
    assert personas.member.post("metrics/record", {"metric_name": "lat", "value": 99999, "metric_type": "timer",
                                                   "unit": "ms", "tags": {"host": "h1"}}).status_code == 201
    after = personas.member.get("metrics/lat/statistics", window).json()
    assert after["count"] == before["count"] + 1 and after["max"] == 99999


def snapshot():
    return {(r.tier, r.series_id, r.name, r.bucket_start): (r.count, r.sum, r.min, r.max, bytes(r.sketch))
            for r in MetricRollup.objects.all()}


@pytest.mark.django_db
def test_rollups_are_idempotent_and_a_late_event_changes_exactly_its_buckets(personas):
    world = World(personas.org, 5_000, seed=9)
    rollup_metrics()
    first = snapshot()
    rollup_metrics()
    assert snapshot() == first

    late_at = floor_time(world.now - timedelta(days=1, hours=5), 60) + timedelta(seconds=17)
    ingest_metric_items(personas.org, [MetricItem("lat", 12345.0, "timer", "ms", tags={"host": "h3"},
                                                  timestamp=late_at)])
    day_window = Window(world.now - timedelta(days=2), world.now)
    # Before the next run the dirty minute is read raw: the answer already counts the late event.
    assert query.statistics("lat", day_window, org=personas.org).count == world.exact(day_window).size + 1

    rollup_metrics()
    second = snapshot()
    changed = {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}
    expected_buckets = {(RollupTier.MINUTE, floor_time(late_at, 60)), (RollupTier.HOUR, floor_time(late_at, 3600)),
                        (RollupTier.DAY, floor_time(late_at, 86400))}
    week = floor_time(late_at, RollupTier.WEEK)
    if week < RollupState.objects.get(tier=RollupTier.WEEK).built_until:  # a week that has ended: it is built
        expected_buckets.add((RollupTier.WEEK, week))
    assert {(tier, bucket) for tier, _, _, bucket in changed} == expected_buckets
    assert len(changed) == 2 * len(expected_buckets)  # the series row and the name row of each tier
    stats = query.statistics("lat", day_window, org=personas.org)
    assert stats.source == "rollup" and stats.max == 12345.0
    assert stats.count == world.exact(day_window).size + 1


@pytest.mark.django_db
def test_rollups_survive_raw_retention(personas, settings):
    world = World(personas.org, 5_000, seed=11)
    rollup_metrics()
    now = timezone.now()
    aligned = Window(floor_time(now - timedelta(days=2, hours=12), 3600), floor_time(now, 3600) - timedelta(hours=2))
    expected = world.exact(Window(aligned.start, aligned.end - timedelta(microseconds=1)))
    settings.ANALYTICS_DB_RETENTION_DAYS = 1
    removed = cleanup_old_data()
    assert removed["metric events"] > 0
    assert not MetricEvent.objects.filter(timestamp__lt=now - timedelta(days=1)).exists()
    stats = query.statistics("lat", aligned, org=personas.org)
    assert stats.count == expected.size and stats.sum == pytest.approx(expected.sum(), rel=1e-9)
    assert stats.p95 == pytest.approx(np.percentile(expected, 95), rel=0.01)


@pytest.mark.django_db
def test_rollup_tiers_have_their_own_retention(personas, settings):
    World(personas.org, 2_000, days=12, seed=3)
    settings.ANALYTICS_ROLLUP_MINUTE_DAYS = 8
    rollup_metrics()
    now = timezone.now()
    oldest_minute = MetricRollup.objects.filter(tier=RollupTier.MINUTE).order_by("bucket_start").first()
    assert oldest_minute.bucket_start >= now - timedelta(days=8, minutes=1)
    assert MetricRollup.objects.filter(tier=RollupTier.HOUR, bucket_start__lt=now - timedelta(days=11)).exists()
    settings.ANALYTICS_ROLLUP_MINUTE_DAYS = 2
    assert cleanup_old_data()["minute rollups"] > 0
    assert not MetricRollup.objects.filter(tier=RollupTier.MINUTE, bucket_start__lt=now - timedelta(days=2)).exists()


@pytest.fixture
def three_weeks(personas):
    built = World(personas.org, 20_000, days=21, seed=21)
    rollup_metrics()
    return built


@pytest.mark.django_db
def test_week_rows_start_on_mondays_and_hold_their_days(three_weeks):
    weeks = MetricRollup.objects.filter(tier=RollupTier.WEEK)
    assert weeks.filter(series=None).count() >= 2  # 21 days hold at least two whole weeks
    for week in weeks.filter(series=None):
        assert (week.bucket_start.weekday(), week.bucket_start.time()) == (0, datetime_time(0))
        days = MetricRollup.objects.filter(tier=RollupTier.DAY, series=None, bucket_start__gte=week.bucket_start,
                                           bucket_start__lt=week.bucket_start + timedelta(days=7))
        assert week.count == sum(day.count for day in days)
        values = three_weeks.exact(Window(week.bucket_start, week.bucket_start + timedelta(days=7, microseconds=-1)))
        assert (week.count, week.min, week.max) == (values.size, values.min(), values.max())
        assert week.sum == pytest.approx(values.sum(), rel=1e-9)
        assert week.p95 == pytest.approx(np.percentile(values, 95), rel=0.01)


@pytest.mark.django_db
def test_a_window_of_weeks_reads_week_rows_and_agrees_with_the_exact_answer(three_weeks):
    now = timezone.now()
    window = Window(now - timedelta(days=20, hours=3), now)
    assert {RollupTier.WEEK, RollupTier.DAY, RollupTier.HOUR, RollupTier.MINUTE, None} <= tiers_used(window)
    stats = query.statistics("lat", window, org=three_weeks.org)
    assert stats.source == "rollup"
    three_weeks.check(stats, window)
    for group in query.grouped_statistics("lat", window, ["host"], org=three_weeks.org):
        three_weeks.check(group, window, host=group.tags["host"])
    # Weekly points are the week rows' buckets: Mondays, as the 1w interval's.
    series = query.time_series("lat", window, interval="1w", aggregate="count", org=three_weeks.org)
    assert series.source == "rollup"
    for moment, value in series.points:
        assert moment.weekday() == 0
        bucket = Window(max(moment, window.start), min(moment + timedelta(days=7, microseconds=-1), window.end))
        assert value == (three_weeks.exact(bucket).size or None), moment


@pytest.mark.django_db
def test_the_week_tier_added_to_a_deployment_is_built_from_its_day_rows(three_weeks, settings):
    """Day rows outlive raw events: a deployment that had no week tier gets its weeks from them."""
    built = snapshot()
    weeks = {key: value for key, value in built.items() if key[0] == RollupTier.WEEK}
    assert weeks
    MetricRollup.objects.filter(tier=RollupTier.WEEK).delete()
    RollupState.objects.filter(tier=RollupTier.WEEK).delete()
    settings.ANALYTICS_DB_RETENTION_DAYS = 2
    assert cleanup_old_data()["metric events"] > 0  # the raw events of the older weeks are gone
    result = rollup_metrics()
    assert result["week_rows"] == len(weeks)
    assert {key: value for key, value in snapshot().items() if key[0] == RollupTier.WEEK} == weeks
