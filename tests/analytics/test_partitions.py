"""Issue 17: raw metric events partitioned by day on PostgreSQL (analytics/services/partitions.py, migration 0009).

Events land in their day's partition, or in the default partition when their day has none; partitions are
created ahead, idempotently and concurrently; retention drops whole expired days and deletes by row only the
older part of the day that straddles the cutoff (and the default partition's old rows), with exact counts;
event-id dedup lives in MetricEventKey and still rejects a repeated id across days and under concurrency.
SQLite (``make run``) has no partitions and deletes rows as before.
"""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.utils import timezone

from analytics import retention, tasks
from analytics.models import MetricEvent, MetricEventKey, Organization
from analytics.platform.scope import PLATFORM
from analytics.services import partitions
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.partitions import DAY, DEFAULT_PARTITION, floor_day, partition_name

postgres_only = pytest.mark.postgres_only
migration = importlib.import_module("analytics.migrations.0009_metric_event_partitions")


def partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM analytics_metricevent WHERE event_id = %s", [event_id])
        (name,) = cursor.fetchone()
    return name


def partition_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
                       [MetricEvent._meta.db_table])
        return {row[0] for row in cursor.fetchall()}


def item(event_id: str | None, moment, value: float = 1.0) -> MetricItem:
    return MetricItem("part.latency", value, metric_type="timer", unit="ms", timestamp=moment, event_id=event_id)


def uncovered_day(start, step: int) -> object:
    """The first day from ``start`` (going ``step`` days at a time) that no day partition covers."""
    covered = partitions.day_partitions()
    day = floor_day(start)
    while any(p.start <= day < p.end for p in covered):
        day += DAY * step
    return day


# --- The table --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_postgresql_is_partitioned_and_sqlite_is_left_as_it_was():
    assert partitions.is_partitioned() == (connection.vendor == "postgresql")
    if connection.vendor != "postgresql":
        assert partitions.day_partitions() == []
        assert partitions.ensure_partitions() == {"created": 0, "left_in_default": 0}


@postgres_only
@pytest.mark.django_db
def test_the_migration_made_a_day_partitioned_table_with_a_default_partition_and_no_event_id_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [MetricEvent._meta.db_table])
        assert cursor.fetchone()[0] == "RANGE (\"timestamp\")"
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                       [MetricEvent._meta.db_table])
        indexes = dict(cursor.fetchall())
    assert DEFAULT_PARTITION in partition_names()
    assert "metric_event_dedup" not in indexes
    assert {"metric_event_series_time", "metric_event_time", "metric_event_id_time"} <= set(indexes)
    assert indexes["metric_event_id_time"].startswith("CREATE UNIQUE INDEX")
    # Every partition created later inherits the parent's indexes.
    today = floor_day(timezone.now())
    partitions.ensure_partitions(today)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [partition_name(today)])
        assert cursor.fetchone()[0] == len(indexes)


@postgres_only
@pytest.mark.django_db
def test_events_land_in_their_days_partition(personas):
    today = floor_day(timezone.now())
    partitions.ensure_partitions(today - DAY, days_ahead=2)
    ingest_metric_items(personas.org, [
        item("midnight", today), item("last-microsecond", today + DAY - timedelta(microseconds=1)),
        item("yesterday", today - timedelta(seconds=1)), item("tomorrow", today + DAY),
    ])
    assert partition_of("midnight") == partition_of("last-microsecond") == partition_name(today)
    assert partition_of("yesterday") == partition_name(today - DAY)
    assert partition_of("tomorrow") == partition_name(today + DAY)
    # The bounds the catalog states are the UTC day.
    (bounds,) = [p for p in partitions.day_partitions() if p.name == partition_name(today)]
    assert (bounds.start, bounds.end) == (today, today + DAY)


# --- Partitions ahead -----------------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_partitions_are_created_ahead_and_idempotently():
    start = uncovered_day(timezone.now() + timedelta(days=200), 10)
    assert partitions.ensure_partitions(start, days_ahead=3, days_back=0) == {"created": 4, "left_in_default": 0}
    assert {partition_name(start + DAY * n) for n in range(4)} <= partition_names()
    assert partitions.ensure_partitions(start, days_ahead=3, days_back=0) == {"created": 0, "left_in_default": 0}
    later = partitions.ensure_partitions(start + DAY * 2, days_ahead=3, days_back=0)
    assert later == {"created": 2, "left_in_default": 0}
    days = [p for p in partitions.day_partitions() if start <= p.start < start + DAY * 6]
    assert [(p.start, p.end) for p in days] == [(start + DAY * n, start + DAY * (n + 1)) for n in range(6)]


@postgres_only
@pytest.mark.django_db
def test_the_rollup_task_creates_the_next_week_and_the_retention_window_of_partitions(settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 20
    today = floor_day(timezone.now())
    last, oldest = today + DAY * partitions.DAYS_AHEAD, today - DAY * 20
    with connection.cursor() as cursor:
        for day in (last, today - DAY * 3):
            cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
    tasks.rollup_metrics()
    names = partition_names()
    # Every day ingest accepts (back to the retention cutoff's day) and a week ahead; nothing older.
    assert {partition_name(oldest + DAY * n) for n in range(20 + partitions.DAYS_AHEAD + 1)} <= names
    assert partition_name(oldest - DAY) not in names
    # Then an event of three days ago (a client that was offline) lands in its day, not in the default.
    org = Organization.objects.create(slug="late", name="Late")
    ingest_metric_items(org, [item("offline", today - DAY * 3 + timedelta(hours=2))])
    assert partition_of("offline") == partition_name(today - DAY * 3)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_create_each_partition_once():
    start = uncovered_day(timezone.now() + timedelta(days=400), 10)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(partitions.ensure_partitions(start, days_ahead=3, days_back=0))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert sum(result["created"] for result in results) == 4
        assert {partition_name(start + DAY * n) for n in range(4)} <= partition_names()
    finally:
        with connection.cursor() as cursor:
            for n in range(4):
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(start + DAY * n)}")


# --- A day without a partition ------------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_an_event_for_a_day_without_a_partition_is_stored_in_the_default_partition_and_stays_there(personas):
    day = uncovered_day(timezone.now() - timedelta(days=40), -1)
    result = ingest_metric_items(personas.org, [item("orphan", day + timedelta(hours=5), 7.0)])
    assert (result.accepted, result.duplicates) == (1, 0)
    assert partition_of("orphan") == DEFAULT_PARTITION
    # Its day gets no partition later (that would mean moving the rows under the table lock): it stays.
    assert partitions.ensure_partitions(day, days_ahead=1, days_back=0)["left_in_default"] == 1
    assert partition_name(day) not in partition_names()
    assert MetricEvent.objects.get(event_id="orphan").value == 7.0
    # And a repeat is still a duplicate, wherever the first one is.
    assert ingest_metric_items(personas.org, [item("orphan", day + timedelta(hours=5))]).duplicates == 1


# --- Dedup -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeated_event_id_is_rejected_across_days_and_scoped_to_its_org(personas):
    now = timezone.now()
    first = ingest_metric_items(personas.org, [item("retry-1", now - timedelta(days=3)), item(None, now)])
    assert (first.accepted, first.duplicates) == (2, 0)
    # The same id on another day (another partition), twice in one batch, beside a new one.
    again = ingest_metric_items(personas.org, [item("retry-1", now), item("retry-2", now - timedelta(days=1)),
                                               item("retry-2", now)])
    assert (again.accepted, again.duplicates) == (1, 2)
    assert ingest_metric_items(personas.other_org, [item("retry-1", now)]).accepted == 1
    assert ingest_metric_items(PLATFORM, [item("retry-1", now)]).accepted == 1
    assert ingest_metric_items(PLATFORM, [item("retry-1", now - timedelta(days=2))]).duplicates == 1
    assert MetricEvent.objects.filter(event_id="retry-1").count() == 3
    assert sorted(MetricEventKey.objects.filter(event_id="retry-1").values_list("org_key", flat=True)) == sorted(
        [0, personas.org.id, personas.other_org.id])
    # The key keeps the time of the event that was stored (the first of the batch for retry-2).
    key = MetricEventKey.objects.get(org_key=personas.org.id, event_id="retry-2")
    assert key.timestamp == MetricEvent.objects.get(event_id="retry-2").timestamp


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_ids_on_different_days_store_each_id_once():
    org = Organization.objects.create(slug="racers", name="Racers")
    now = timezone.now()
    ids = [f"race-{n}" for n in range(2000)]
    barrier = threading.Barrier(4)
    accepted, errors = [], []

    def send(offset: int):
        # Each sender has every id, in its own order and on its own day: ids are unique across days.
        mine = ids[offset * 500:] + ids[:offset * 500]
        moment = now - timedelta(days=offset)
        try:
            barrier.wait()
            accepted.append(ingest_metric_items(org, [item(event_id, moment) for event_id in mine]).accepted)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(accepted) == len(ids)
    assert MetricEvent.objects.filter(org=org).count() == len(ids)
    assert MetricEvent.objects.filter(org=org).values("event_id").distinct().count() == len(ids)
    assert MetricEventKey.objects.filter(org_key=org.id).count() == len(ids)


# --- Retention ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retention_drops_whole_old_days_deletes_the_straddling_part_and_keeps_the_rest_exactly(personas, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 30
    now = timezone.now()
    cutoff = now - timedelta(days=30)
    today = floor_day(now)
    partitions.ensure_partitions(today - DAY * 35, days_ahead=35, days_back=0)
    moments = [today - DAY * days + timedelta(hours=hour) for days in range(1, 36) for hour in (1, 12, 23)]
    # Old and recent rows in the default partition too: a day 50 days ago and one far ahead have no partition.
    lonely_old = uncovered_day(now - timedelta(days=50), -1) + timedelta(hours=3)
    lonely_ahead = uncovered_day(now + timedelta(days=60), 1) + timedelta(hours=3)
    moments += [lonely_old, lonely_ahead]
    ingest_metric_items(personas.org, [item(f"r-{n}", moment, n) for n, moment in enumerate(moments)])
    ingest_metric_items(personas.org, [item(None, moment) for moment in moments[:10]])  # events without ids
    expired = sum(1 for moment in moments if moment < cutoff) + sum(1 for moment in moments[:10] if moment < cutoff)
    kept = len(moments) + 10 - expired
    before = partitions.day_partitions()

    removed = retention.cleanup(now)

    assert removed["metric events"] == expired
    assert MetricEvent.objects.count() == kept
    assert not MetricEvent.objects.filter(timestamp__lt=cutoff).exists()
    assert MetricEvent.objects.filter(timestamp__gte=cutoff).count() == kept
    assert removed["metric event ids"] == sum(1 for moment in moments if moment < cutoff)
    assert MetricEventKey.objects.count() == sum(1 for moment in moments if moment >= cutoff)
    if connection.vendor == "postgresql":
        after = {p.name for p in partitions.day_partitions()}
        assert {p.name for p in before if p.end <= cutoff}.isdisjoint(after)  # whole days: dropped
        assert {p.name for p in before if p.end > cutoff} <= after  # the straddling day and newer: kept
        assert partition_of(f"r-{len(moments) - 1}") == DEFAULT_PARTITION  # the far-ahead one, kept
        assert not MetricEvent.objects.filter(event_id=f"r-{len(moments) - 2}").exists()  # the old one, deleted
    # Nothing more is due: a second run removes nothing.
    again = retention.cleanup(now)
    assert (again["metric events"], again["metric event ids"]) == (0, 0)


@postgres_only
@pytest.mark.django_db
def test_retention_deletes_the_straddling_day_in_batches(personas, settings, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_BATCH", 7)
    settings.ANALYTICS_DB_RETENTION_DAYS = 10
    now = floor_day(timezone.now()) + timedelta(hours=12)
    partitions.ensure_partitions(now - DAY * 11, days_ahead=11)
    old = now - timedelta(days=10, hours=6)  # the straddling day, before the cutoff
    ingest_metric_items(personas.org, [item(f"b-{n}", old, n) for n in range(30)] + [item("young", now)])
    assert retention.cleanup(now)["metric events"] == 30
    assert list(MetricEvent.objects.values_list("event_id", flat=True)) == ["young"]
    assert partition_name(floor_day(old)) in partition_names()


# --- The migration with rows ----------------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_the_migration_converts_a_table_with_rows_keeping_ids_and_the_sequence(personas, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 20
    now = timezone.now()
    moments = [now - timedelta(days=days, hours=1) for days in (0, 1, 5, 19, 25)]
    ingest_metric_items(personas.org, [item(f"m-{n}", moment) for n, moment in enumerate(moments)])
    rows = set(MetricEvent.objects.values_list("id", "timestamp", "value", "event_id"))
    editor = SimpleNamespace(connection=connection)

    migration.unpartition_events(None, editor)
    assert not partitions.is_partitioned()
    assert set(MetricEvent.objects.values_list("id", "timestamp", "value", "event_id")) == rows
    migration.partition_events(None, editor)

    assert partitions.is_partitioned()
    assert set(MetricEvent.objects.values_list("id", "timestamp", "value", "event_id")) == rows
    assert partition_of("m-4") == DEFAULT_PARTITION  # older than retention: no partition made for it
    assert partition_of("m-3") == partition_name(floor_day(moments[3]))
    assert partition_of("m-0") == partition_name(floor_day(moments[0]))
    # Every day from the oldest kept row to a week ahead has its partition; the id sequence goes on.
    names = partition_names()
    day = floor_day(moments[3])
    while day <= floor_day(now) + DAY * migration.DAYS_AHEAD:
        assert partition_name(day) in names
        day += DAY
    ingest_metric_items(personas.org, [item("after", now)])
    assert MetricEvent.objects.get(event_id="after").id > max(row[0] for row in rows)
