"""The planner answers from rollups whenever the raw part holds few rows, whatever the window's length in time:
a window that starts before a metric's first event (or before the raw retention) is not "raw" for that."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import MetricSeries, RollupTier
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.rollups import floor_time, rollup_metrics

pytestmark = pytest.mark.django_db


def record(org, moments, name="queue.depth", **tags):
    ingest_metric_items(org, [MetricItem(name, float(index % 7), "gauge", "", "", tags, moment)
                              for index, moment in enumerate(moments)])


def test_a_metric_twelve_days_old_is_answered_from_rollups_over_30_and_90_days(personas):
    now = timezone.now()
    moments = [now - timedelta(days=12) + timedelta(hours=hour) for hour in range(12 * 24 - 1)]
    record(personas.org, moments, host="a")
    rollup_metrics()
    for days in (30, 90):
        window = Window(now - timedelta(days=days), now)
        stats = query.statistics("queue.depth", window, org=personas.org)
        assert (stats.source, stats.count) == ("rollup", len(moments)), days
        assert stats.sum == sum(float(index % 7) for index in range(len(moments)))
        groups = query.grouped_statistics("queue.depth", window, ["host"], org=personas.org)
        assert [(group.source, group.count) for group in groups] == [("rollup", len(moments))]


def test_recent_raw_events_still_make_a_short_window_exact(personas):
    now = timezone.now()
    record(personas.org, [now - timedelta(minutes=minutes) for minutes in range(1, 100)])
    rollup_metrics()
    stats = query.statistics("queue.depth", Window(now - timedelta(minutes=30), now), org=personas.org)
    assert stats.count == 30  # both ends of the window included


def test_a_late_event_older_than_the_series_moves_its_first_seen_back(personas):
    now = timezone.now()
    record(personas.org, [now - timedelta(hours=1)])
    record(personas.org, [now - timedelta(days=5)])
    series = MetricSeries.objects.get(name="queue.depth")
    assert abs((series.first_seen - (now - timedelta(days=5))).total_seconds()) < 1
    stats = query.statistics("queue.depth", Window(now - timedelta(days=30), now), org=personas.org)
    assert stats.count == 2


def test_the_time_before_a_metrics_first_event_is_not_planned(personas):
    """A 90-day and a 30-day window over a metric 12 days old read the same segments: from its first event's
    minute to the end, whatever other metrics (here one 40 days old) made the tiers reach back to."""
    now = timezone.now()
    record(personas.org, [now - timedelta(days=40)], name="old.metric")
    first = now - timedelta(days=12, minutes=7, seconds=30)
    record(personas.org, [first + timedelta(hours=hour) for hour in range(12 * 24)], host="a")
    rollup_metrics()
    ids = list(MetricSeries.objects.filter(name="queue.depth").values_list("id", flat=True))
    plans = {days: query._rollup_plan(Window(now - timedelta(days=days), now), ids) for days in (30, 90)}
    assert plans[30] is not None and plans[90] == plans[30]
    assert plans[30][0].start == floor_time(first, 60)
    assert {segment.tier for segment in plans[90]} >= {RollupTier.DAY, RollupTier.HOUR}
    counts = {days: query.statistics("queue.depth", Window(now - timedelta(days=days), now), org=personas.org)
              for days in (30, 90)}
    assert [(stats.source, stats.count) for stats in counts.values()] == [("rollup", 12 * 24)] * 2
