"""Daily partitions of the raw metric events on PostgreSQL (issue 17; docs/metrics.md, "Partitions").

    is_partitioned() -> bool                                  PostgreSQL with migration 0009 applied
    day_partitions() -> list[Partition]                       the day partitions, oldest first
    ensure_partitions(now=None, ...) -> dict                  create the missing days' partitions (idempotent)
    remove_events_before(cutoff, batch_size) -> int           retention: drop whole days, delete the rest

``analytics_metricevent`` is partitioned by range on ``timestamp``, one partition per UTC day
(``analytics_metricevent_pYYYYMMDD``), plus a default partition (``analytics_metricevent_default``) that
takes any row no day partition covers, so an event for a day without a partition is stored, never refused.
The rollup job and the retention job create the partitions of every day ingest accepts (back to
ANALYTICS_DB_RETENTION_DAYS) and of a week ahead. Retention drops the partitions whose whole day is past the
cutoff and deletes by row only what is older than the cutoff in the day that straddles it and in the default
partition. On SQLite (``make run``) there are no partitions: every function here is a no-op and retention
deletes rows as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from analytics.models import MetricEvent
from analytics.platform.batched import delete_older_by_row_id

logger = logging.getLogger(__name__)

TABLE = MetricEvent._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
DAY = timedelta(days=1)
# A week ahead: the rollup job (every minute) and the retention job (daily) create them, so a week of
# either job being down still finds every day's partition in place.
DAYS_AHEAD = 7
# Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on the events table. It waits at most this
# long behind running queries (which queue behind it meanwhile), then gives up until the next run.
LOCK_TIMEOUT = "1s"
DROP_ATTEMPTS = 3


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # inclusive
    end: datetime  # exclusive


def partition_name(day: datetime) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row and row[0])


def day_partitions() -> list[Partition]:
    """The range partitions of the events table (the default partition aside), oldest first."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        # The bounds as the catalog states them, cast back to timestamps by PostgreSQL itself.
        cursor.execute(
            "SELECT c.relname, bound[1]::timestamptz, bound[2]::timestamptz FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), "
            "$$FROM \\('([^']*)'\\) TO \\('([^']*)'\\)$$) AS bound "
            "WHERE i.inhparent = %s::regclass AND bound IS NOT NULL ORDER BY 2", [TABLE])
        return [Partition(name, start, end) for name, start, end in cursor.fetchall()]


@contextmanager
def _lock_timeout() -> Iterator[None]:
    """LOCK_TIMEOUT for the statements inside (use inside ``transaction.atomic()``), the previous one after.

    On an error nothing is restored here: the rollback of the atomic block undoes the setting too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (previous,) = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
        yield
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def _lock_events_table(cursor) -> None:
    # Taken first and whole: CREATE TABLE ... PARTITION OF and DROP TABLE take it anyway, and ingest locks
    # the parent before a partition, so taking it in the same order cannot deadlock with ingest.
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")


def _default_has_rows(cursor, start: datetime, end: datetime) -> bool:
    cursor.execute(f'SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s AND "timestamp" < %s)',
                   [start, end])
    return bool(cursor.fetchone()[0])


def ensure_partitions(now: datetime | None = None, days_ahead: int = DAYS_AHEAD,
                      days_back: int | None = None) -> dict[str, int]:
    """Create the day partitions (UTC) from ``days_back`` days before ``now`` to ``days_ahead`` days after it
    that do not exist yet. ``days_back`` defaults to ANALYTICS_DB_RETENTION_DAYS: ingest accepts events that
    old, so a backfill or a client that was offline lands in day partitions too, not in the default one.

    Idempotent, and safe to run concurrently (the table lock serialises the runs; each checks again under
    it). Costs one catalog query when nothing is missing. A day whose events already went to the default
    partition (the jobs were down longer than ``days_ahead``) keeps them there and gets no partition:
    moving them would hold the lock for as long as the copy. Returns {"created": n, "left_in_default": m},
    or zeros on SQLite.
    """
    result = {"created": 0, "left_in_default": 0}
    if not is_partitioned():
        return result
    moment = now or timezone.now()
    back = settings.ANALYTICS_DB_RETENTION_DAYS if days_back is None else days_back
    first = floor_day(moment - timedelta(days=back))
    wanted = [first + DAY * offset for offset in range((floor_day(moment) - first).days + days_ahead + 1)]

    def missing() -> list[datetime]:
        covered = day_partitions()
        return [day for day in wanted if not any(p.start <= day and day + DAY <= p.end for p in covered)]

    if not missing():
        return result
    started = time.monotonic()
    try:
        with transaction.atomic(), _lock_timeout(), connection.cursor() as cursor:
            _lock_events_table(cursor)
            for day in missing():
                if _default_has_rows(cursor, day, day + DAY):
                    result["left_in_default"] += 1
                    continue
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {TABLE} "
                               "FOR VALUES FROM (%s) TO (%s)", [day, day + DAY])
                result["created"] += 1
    except OperationalError as error:  # lock_timeout: a long query held the table; the next run tries again
        logger.warning("ensure_partitions: events table busy, nothing created (%s)", error)
        return {"created": 0, "left_in_default": 0}
    logger.info("ensure_partitions: created=%d left_in_default=%d in %.2fs", result["created"],
                result["left_in_default"], time.monotonic() - started)
    return result


def remove_events_before(cutoff: datetime, batch_size: int) -> int:
    """Retention on the partitioned table: the rows older than ``cutoff`` removed; how many.

    Day partitions whose whole day is older than the cutoff are counted and dropped (one short lock on the
    table for all of them, retried DROP_ATTEMPTS times, else left to the next run). What is older than the
    cutoff in the day that straddles it, and in the default partition, is deleted ``batch_size`` rows at a
    time: retention stays exact to the second, as on SQLite.
    """
    partitions = day_partitions()
    expired = [p for p in partitions if p.end <= cutoff]
    removed = 0
    if expired:
        with connection.cursor() as cursor:
            counts = {}
            for partition in expired:  # no row arrives in an expired day: ingest refuses them
                cursor.execute(f"SELECT count(*) FROM {partition.name}")
                counts[partition.name] = cursor.fetchone()[0]
        for attempt in range(1, DROP_ATTEMPTS + 1):
            try:
                with transaction.atomic(), _lock_timeout(), connection.cursor() as cursor:
                    _lock_events_table(cursor)
                    for partition in expired:
                        cursor.execute(f"DROP TABLE IF EXISTS {partition.name}")
                removed += sum(counts.values())
                break
            except OperationalError as error:
                # Left for the next run rather than deleted row by row: a day late beats a day-long DELETE.
                logger.warning("retention: events table busy, %d partitions not dropped (attempt %d of %d: %s)",
                               len(expired), attempt, DROP_ATTEMPTS, error)
                if attempt < DROP_ATTEMPTS:
                    time.sleep(attempt)
    straddling = [p.name for p in partitions if p.start < cutoff < p.end]
    for table in [*straddling, DEFAULT_PARTITION]:
        removed += delete_older_by_row_id(table, cutoff, batch_size)
    return removed
