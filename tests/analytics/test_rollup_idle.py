"""rollup_metrics runs every minute: what a run costs when nothing, or little, has arrived.

With nothing new a run locks the tier states, reads the dirty marks and reads raw events only for the
minute that closed. A late event is still rolled up by the next run, which reads the raw events of its
metric name in its hour and rewrites the rows of that name only.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import MetricEvent, MetricRollup, MetricSeries, RollupState, RollupTier
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services import rollups
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.rollups import floor_time, rollup_metrics

pytestmark = pytest.mark.django_db

RAW_TABLE = re.compile(rf"\b{MetricEvent._meta.db_table}\b")
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
NOTHING = {"minute_rows": 0, "hour_rows": 0, "day_rows": 0, "week_rows": 0, "dirty_minutes": 0}


def record(personas):
    """Three days of events, every 10 minutes, of two names in one org and one of them in another, up to a
    moment in the middle of an hour (so that the runs a minute apart close neither an hour nor a day)."""
    now = floor_time(timezone.now(), 3600) - timedelta(minutes=29, seconds=30)
    moments = [now - timedelta(minutes=2 + 10 * step) for step in range(3 * 24 * 6)]
    for org, name, hosts in ((personas.org, "lat", ("h1", "h2", "h3")), (personas.org, "queue.depth", ("h1",)),
                             (personas.other_org, "lat", ("h1",))):
        ingest_metric_items(org, [MetricItem(name, float(index % 13), "timer", "ms", tags={"host": host},
                                             timestamp=moment)
                                  for host in hosts for index, moment in enumerate(moments)])
    return now


def run(now, monkeypatch):
    """rollup_metrics(now): its result, its SQL statements, and the spans of raw events it read."""
    spans = []
    read = rollups._raw_values

    def spy(start, end, series_ids=None):
        spans.append((start, end, None if series_ids is None else set(series_ids)))
        return read(start, end, series_ids)

    monkeypatch.setattr(rollups, "_raw_values", spy)
    with CaptureQueriesContext(connection) as captured:
        result = rollup_metrics(now=now)
    monkeypatch.undo()
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(TRANSACTION_CONTROL)]
    return result, statements, spans


def rollup_rows():
    return {(r.tier, r.org_id, r.name, r.series_id, r.bucket_start): (r.pk, r.count, r.sum, r.min, r.max,
                                                                       bytes(r.sketch))
            for r in MetricRollup.objects.all()}


def test_a_run_with_nothing_new_reads_raw_events_only_for_the_minute_that_closed(personas, monkeypatch):
    now = record(personas)
    rollup_metrics(now=now)

    # Again at the same moment: nothing closed, nothing dirty. Two statements: lock the tier states (one
    # query for all three) and read the dirty marks; no look at the raw events at all.
    result, statements, spans = run(now, monkeypatch)
    assert result == NOTHING
    assert spans == [] and not [sql for sql in statements if RAW_TABLE.search(sql)]
    assert len(statements) <= 2, statements

    # A minute later one minute has closed, with no events in it: its raw events are read (one indexed
    # range), its rows replaced (nothing to insert) and the minute state moved. Five statements.
    built_until = RollupState.objects.get(tier=RollupTier.MINUTE).built_until
    result, statements, spans = run(now + timedelta(minutes=1), monkeypatch)
    assert result == NOTHING
    assert spans == [(built_until, built_until + timedelta(minutes=1), None)]
    assert len([sql for sql in statements if RAW_TABLE.search(sql)]) == 1
    assert len(statements) <= 5, statements
    assert RollupState.objects.get(tier=RollupTier.MINUTE).built_until == built_until + timedelta(minutes=1)


def test_a_late_event_is_rolled_up_by_the_next_run_which_rewrites_only_its_own_metric(personas, monkeypatch):
    now = record(personas)
    rollup_metrics(now=now)
    before = rollup_rows()

    late_at = floor_time(now - timedelta(days=1, hours=5), 60) + timedelta(seconds=17)
    ingest_metric_items(personas.org, [MetricItem("lat", 12345.0, "timer", "ms", tags={"host": "h3"},
                                                  timestamp=late_at)])
    result, _, spans = run(now, monkeypatch)
    assert result["dirty_minutes"] == 1

    # One read: the late event's hour, of every series named "lat" (both orgs: name rows are per org, and
    # are replaced by name), not of "queue.depth".
    hour = floor_time(late_at, 3600)
    assert spans == [(hour, hour + timedelta(hours=1), set(MetricSeries.objects.filter(name="lat")
                                                           .values_list("id", flat=True)))]
    after = rollup_rows()
    keys = before.keys() | after.keys()
    # The late event's minute, hour and day, and its week once that week has ended (weeks start on Mondays).
    buckets = {(tier, floor_time(late_at, tier)) for tier in RollupTier.values
               if floor_time(late_at, tier) < RollupState.objects.get(tier=tier).built_until}
    assert {tier for tier, _ in buckets} >= {RollupTier.MINUTE, RollupTier.HOUR, RollupTier.DAY}
    # Rewritten (a new primary key): rows of "lat" in those buckets only.
    rewritten = {key for key in keys if before.get(key, (None,))[0] != after.get(key, (None,))[0]}
    assert {name for _, _, name, _, _ in rewritten} == {"lat"}
    assert {(tier, bucket) for tier, _, _, _, bucket in rewritten} <= buckets
    # Changed in value: the h3 series row and the org's name row, in each of those; nothing else.
    changed = {key for key in keys if before.get(key, (None,))[1:] != after.get(key, (None,))[1:]}
    h3 = MetricSeries.objects.get(org=personas.org, name="lat", tags__host="h3").id
    assert {(tier, org_id, series_id) for tier, org_id, _, series_id, _ in changed} == {
        (tier, personas.org.id, series_id) for tier, _ in buckets for series_id in (h3, None)}

    window = Window(now - timedelta(days=2), now)
    stats = query.statistics("lat", window, org=personas.org)
    assert stats.source == "rollup" and stats.max == 12345.0
    assert stats.count == 3 * 2 * 24 * 6 + 1
