# Issue 17: on PostgreSQL, analytics_metricevent becomes a table partitioned by day on "timestamp"; the event
# ids move to their own table (MetricEventKey) on both databases. SQLite keeps its plain events table.
#
# The SQL is frozen here rather than imported from analytics/services/partitions.py, which may change later;
# the names (analytics_metricevent_pYYYYMMDD, analytics_metricevent_default) are the ones it uses.

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations, models

TABLE = "analytics_metricevent"
DEFAULT_PARTITION = f"{TABLE}_default"
DAYS_AHEAD = 7  # analytics.services.partitions.DAYS_AHEAD when this was written
# (id, timestamp) unique on the partitioned table, as a unique index rather than a PRIMARY KEY constraint:
# pg_restore --clean (analytics/platform/backup.py) cannot drop a partitioned primary key (PostgreSQL 15's
# pg_dump drops each partition's inherited constraint first, which fails), while a partitioned index goes
# with its parent. Django's primary key stays ``id``, unique through its one identity sequence.
ID_INDEX = "metric_event_id_time"


def copy_event_ids(apps, schema_editor):
    """Every stored event id into the key table (the platform's as org 0). The old index let the platform
    scope (org NULL) hold one id twice on PostgreSQL (NULLs are distinct there): the first copy wins."""
    key_table = apps.get_model("analytics", "MetricEventKey")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {key_table} (org_key, event_id, "timestamp") '
            f'SELECT COALESCE(org_id, 0), event_id, "timestamp" FROM {TABLE} WHERE event_id IS NOT NULL '
            "ON CONFLICT DO NOTHING")


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes, the primary key and the (id, timestamp) aside."""
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                   "AND tablename = %s AND indexname NOT IN (%s, %s) ORDER BY indexname",
                   [table, f"{table}_pkey", ID_INDEX])
    return cursor.fetchall()


def _rename(cursor, old: str) -> None:
    """TABLE and its id sequence renamed to ``old``, so that the new TABLE can take both names."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {old}_id_seq")


def _move_rows(cursor, old: str) -> None:
    """The rows and the id sequence's position from ``old`` into the new TABLE, then ``old`` dropped."""
    cursor.execute(f"SELECT last_value, is_called FROM {old}_id_seq")
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")
    cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", [TABLE, last_value, is_called])
    cursor.execute(f"DROP TABLE {old}")


def partition_events(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        indexes = _indexes(cursor, TABLE)  # their statements name TABLE: run again on the new table
        cursor.execute(f'SELECT min("timestamp"), max("timestamp"), count(*) > 0 FROM {TABLE}')
        first, last, has_rows = cursor.fetchone()
        old = f"{TABLE}_unpartitioned"
        _rename(cursor, old)
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY) "
                       'PARTITION BY RANGE ("timestamp")')
        # The default partition takes what no day partition covers: rows older than the retention window
        # (retention deletes them on its next run) and days the scheduled job has not created yet.
        cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
        today = _day(datetime.now(UTC))
        start = today
        if has_rows:  # a day partition for every day of the rows that retention keeps (none is in the future)
            oldest_kept = _day(datetime.now(UTC) - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS))
            start = min(today, max(_day(first), oldest_kept))
        end = today + timedelta(days=DAYS_AHEAD + 1)
        day = start
        while day < end:
            cursor.execute(f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} "
                           "FOR VALUES FROM (%s) TO (%s)", [day, day + timedelta(days=1)])
            day += timedelta(days=1)
        _move_rows(cursor, old)
        # Indexes after the rows: one sorted build per partition instead of one insert per row.
        cursor.execute(f'CREATE UNIQUE INDEX {ID_INDEX} ON {TABLE} (id, "timestamp")')
        for _name, statement in indexes:
            cursor.execute(statement)
        if has_rows:
            cursor.execute(f"ANALYZE {TABLE}")


def unpartition_events(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        indexes = _indexes(cursor, TABLE)
        old = f"{TABLE}_partitioned"
        _rename(cursor, old)
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY)")
        _move_rows(cursor, old)  # dropping the partitioned table drops its partitions
        cursor.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)")
        for _name, statement in indexes:
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0008_skill_execution_totals'),
    ]

    operations = [
        migrations.CreateModel(
            name='MetricEventKey',
            fields=[
                ('pk', models.CompositePrimaryKey('org_key', 'event_id', blank=True, editable=False, primary_key=True, serialize=False)),
                ('org_key', models.BigIntegerField()),
                ('event_id', models.CharField(max_length=128)),
                ('timestamp', models.DateTimeField()),
            ],
        ),
        migrations.AddIndex(
            model_name='metriceventkey',
            index=models.Index(fields=['timestamp'], name='metric_event_key_time'),
        ),
        migrations.RunPython(copy_event_ids, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(
            model_name='metricevent',
            name='metric_event_dedup',
        ),
        migrations.RunPython(partition_events, unpartition_events),
    ]
