"""Building the rollup tiers behind the metrics query layer.

    rollup_metrics(now=None) -> dict        build what closed since the last run, rebuild dirty buckets
    mark_dirty(timestamps, now)              called by ingest for events that may land in rolled minutes
    cleanup_rollups(now) -> dict             minute and hour rows past their retention
    built_tiers() -> dict[tier, (from, until)]   (cached for a second)

Minute and hour rows are built from raw events, day rows from hour rows. A run is
idempotent: each bucket it builds is deleted and written again in one
transaction, so running twice (or after late events) gives the same rows.

Freshness: a minute is built once it is LAG old. An event whose time is older than
LAG when it is recorded may belong to a minute that is already built, so ingest
marks that minute dirty: the query layer reads dirty minutes raw, and the next run
rebuilds the minute, its hour and its day.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import DirtyMinute, MetricEvent, MetricRollup, MetricSeries, RollupState, RollupTier
from analytics.platform.batched import delete_in_batches
from analytics.services.bulk_insert import insert_rows
from analytics.services.percentiles import percentiles_of_sorted_groups
from analytics.services.sketch import Sketch, blobs_for_sorted_groups

logger = logging.getLogger(__name__)

LAG = timedelta(seconds=60)
# Raw events are read a chunk at a time: large enough that a backfill is a few hundred queries,
# small enough that a chunk of a busy metric fits in memory many times over.
RAW_CHUNK = timedelta(hours=6)
MINUTE, HOUR, DAY = RollupTier.MINUTE, RollupTier.HOUR, RollupTier.DAY
PERCENTILE_FRACTIONS = (0.5, 0.95, 0.99)
ANALYZE_AFTER_ROWS = 100_000


def floor_time(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)


def ceil_time(moment: datetime, seconds: int) -> datetime:
    floored = floor_time(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(seconds) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


# --- Rows from values -------------------------------------------------------------------


def _grouped_rows(groups: np.ndarray, buckets: np.ndarray, values: np.ndarray):
    """(group, bucket, count, sum, min, max, p50, p95, p99, sketch bytes) per distinct (group, bucket).

    Built from the values themselves, so the stored percentiles of these rows are exact.
    """
    if values.size == 0:
        return []
    order = np.lexsort((values, buckets, groups))  # by group, then bucket, then value
    groups, buckets, values = groups[order], buckets[order], values[order]
    starts = np.concatenate([[0], np.flatnonzero((np.diff(groups) != 0) | (np.diff(buckets) != 0)) + 1])
    ends = np.append(starts[1:], values.size)
    counts = ends - starts
    sums = np.add.reduceat(values, starts)
    percentiles = percentiles_of_sorted_groups(values, starts, PERCENTILE_FRACTIONS)
    blobs = blobs_for_sorted_groups(values, starts)
    return list(zip(groups[starts].tolist(), buckets[starts].tolist(), counts.tolist(), sums.tolist(),
                    values[starts].tolist(), values[ends - 1].tolist(), *(p.tolist() for p in percentiles), blobs,
                    strict=True))


ROLLUP_COLUMNS = ["tier", "org_id", "name", "series_id", "bucket_start", "count", "sum", "min", "max",
                  "p50", "p95", "p99", "sketch"]


def epoch_sql(column: str) -> str:
    """SQL for a datetime column as whole epoch seconds (floored, on both databases)."""
    if connection.vendor == "postgresql":
        return f"floor(extract(epoch from {column}))::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _series_owners(series_ids) -> dict[int, tuple]:
    return {sid: (org_id, name) for sid, org_id, name in
            MetricSeries.objects.filter(id__in=list(series_ids)).values_list("id", "org_id", "name")}


def _rows_from_raw(tier: int, start: datetime, end: datetime, only_buckets: set[int] | None = None):
    """Series and name rows of ``tier`` for the buckets in [start, end), from raw events."""
    table = MetricEvent._meta.db_table
    epoch = epoch_sql("timestamp")
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT series_id, {epoch}, value FROM {table} WHERE timestamp >= %s AND timestamp < %s",
            [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)],
        )
        fetched = cursor.fetchall()
    if not fetched:
        return []
    data = np.array(fetched, dtype=np.float64)
    series_ids, buckets, values = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64) // tier * tier, data[:, 2]
    if only_buckets is not None:
        keep = np.isin(buckets, np.array(sorted(only_buckets), dtype=np.int64))
        series_ids, buckets, values = series_ids[keep], buckets[keep], values[keep]
    owners = _series_owners(np.unique(series_ids).tolist())
    rows = [(tier, *owners[group], group, _from_epoch(bucket), *figures)
            for group, bucket, *figures in _grouped_rows(series_ids, buckets, values)]
    # Name rows: every series of a metric name in an org together.
    name_keys = sorted(set(owners.values()), key=lambda key: (key[0] or 0, key[1]))
    name_index = {key: index for index, key in enumerate(name_keys)}
    lookup = {sid: name_index[owner] for sid, owner in owners.items()}
    name_groups = np.array([lookup[sid] for sid in series_ids.tolist()], dtype=np.int64)
    rows += [(tier, *name_keys[group], None, _from_epoch(bucket), *figures)
             for group, bucket, *figures in _grouped_rows(name_groups, buckets, values)]
    return rows


def _rows_from_finer(tier: int, bucket: datetime) -> list[tuple]:
    """Rows of one ``tier`` bucket by merging the rows of the next finer tier inside it."""
    finer_tiers: dict[int, int] = {DAY: HOUR}
    finer = finer_tiers[tier]
    parts = defaultdict(list)
    finer_rows = MetricRollup.objects.filter(tier=finer, bucket_start__gte=bucket,
                                             bucket_start__lt=bucket + timedelta(seconds=tier))
    for org_id, name, series_id, count, total, low, high, blob in finer_rows.values_list(
            "org_id", "name", "series_id", "count", "sum", "min", "max", "sketch"):
        parts[(org_id, name, series_id)].append((count, total, low, high, blob))
    rows = []
    for (org_id, name, series_id), pieces in parts.items():
        sketch = Sketch.merge(Sketch.from_bytes(piece[4]) for piece in pieces)
        low, high = min(p[2] for p in pieces), max(p[3] for p in pieces)
        rows.append((tier, org_id, name, series_id, bucket, sum(p[0] for p in pieces), sum(p[1] for p in pieces),
                     low, high, *sketch.quantiles(PERCENTILE_FRACTIONS, low, high), sketch.to_bytes()))
    return rows


def _replace(tier: int, bucket_filter: dict, rows: list[tuple]) -> int:
    MetricRollup.objects.filter(tier=tier, **bucket_filter).delete()
    return insert_rows(MetricRollup._meta.db_table, ROLLUP_COLUMNS, rows)


# --- State ------------------------------------------------------------------------------


def _earliest_event() -> datetime | None:
    first = MetricEvent.objects.order_by("timestamp").values_list("timestamp", flat=True).first()
    return first


def _state(tier: int, default_start: datetime) -> RollupState:
    state = RollupState.objects.select_for_update().filter(tier=tier).first()
    if state is None:
        start = floor_time(default_start, tier)
        state = RollupState.objects.create(tier=tier, built_from=start, built_until=start)
    return state


class _TierCache(TypedDict):
    at: float  # time.monotonic() of the last read
    tiers: dict[int, tuple[datetime, datetime]]


_TIER_CACHE: _TierCache = {"at": 0.0, "tiers": {}}
# The query layer reads coverage on every question. A copy up to a second old is safe: it can only
# under-state what is built, except right after a retention run moved built_from (once a day).
TIER_CACHE_SECONDS = 1.0


def built_tiers() -> dict[int, tuple[datetime, datetime]]:
    """{tier: (built_from, built_until)}, cached for TIER_CACHE_SECONDS."""
    moment = time.monotonic()
    if moment - _TIER_CACHE["at"] > TIER_CACHE_SECONDS:
        _TIER_CACHE["tiers"] = {s.tier: (s.built_from, s.built_until) for s in RollupState.objects.all()}
        _TIER_CACHE["at"] = moment
    return _TIER_CACHE["tiers"]


def _forget_built_tiers() -> None:
    _TIER_CACHE["at"] = 0.0


def retention_start(tier: int, now: datetime) -> datetime | None:
    days_kept: dict[int, int] = {MINUTE: settings.ANALYTICS_ROLLUP_MINUTE_DAYS,
                                 HOUR: settings.ANALYTICS_ROLLUP_HOUR_DAYS, DAY: settings.ANALYTICS_ROLLUP_DAY_DAYS}
    days = days_kept[tier]
    return None if not days else ceil_time(now - timedelta(days=days), tier)


# --- The run -------------------------------------------------------------------------------


def mark_dirty(series_times, now: datetime) -> int:
    """Mark (series, minute) for events old enough that their minute may already be rolled up.

    Before the first build there is nothing to mark: the first run starts from the earliest event.
    """
    if not built_tiers():
        return 0
    threshold = now - LAG
    marks = {(series_id, floor_time(moment, MINUTE)) for series_id, moment in series_times if moment < threshold}
    if marks:
        DirtyMinute.objects.bulk_create([DirtyMinute(series_id=s, minute=m) for s, m in marks],
                                        ignore_conflicts=True, batch_size=2000)
    return len(marks)


def _rebuild_buckets(tier: int, buckets: set[int]) -> int:
    """Rebuild the given buckets of ``tier`` (epoch seconds) the way ``_build_range`` builds them."""
    written = 0
    if tier == DAY:
        for bucket in sorted(buckets):
            day = _from_epoch(bucket)
            written += _replace(DAY, {"bucket_start": day}, _rows_from_finer(DAY, day))
        return written
    by_hour = defaultdict(set)
    for bucket in buckets:
        by_hour[bucket // HOUR * HOUR].add(bucket)
    for hour, hour_buckets in sorted(by_hour.items()):
        start = _from_epoch(hour)
        rows = _rows_from_raw(tier, start, start + timedelta(hours=1), hour_buckets)
        written += _replace(tier, {"bucket_start__in": [_from_epoch(b) for b in hour_buckets]}, rows)
    return written


def _build_range(tier: int, start: datetime, end: datetime) -> int:
    """Build every bucket of ``tier`` in [start, end): minute and hour rows from raw events (reading
    values is cheaper than decoding sixty minute sketches per hour), day rows by merging hour rows."""
    written = 0
    if tier == DAY:
        day = start
        while day < end:
            written += _replace(DAY, {"bucket_start": day}, _rows_from_finer(DAY, day))
            day += timedelta(days=1)
        return written
    while start < end:
        chunk_end = min(end, start + RAW_CHUNK)
        rows = _rows_from_raw(tier, start, chunk_end)
        written += _replace(tier, {"bucket_start__gte": start, "bucket_start__lt": chunk_end}, rows)
        start = chunk_end
    return written


def rollup_metrics(now: datetime | None = None) -> dict[str, int]:
    """Build the buckets that closed since the last run and rebuild the dirty ones. Idempotent."""
    now = now or timezone.now()
    started = time.monotonic()
    written = {MINUTE: 0, HOUR: 0, DAY: 0}
    with transaction.atomic():
        earliest = _earliest_event() or now
        states = {
            tier: _state(tier, max(earliest, retention_start(tier, now) or earliest)) for tier in (MINUTE, HOUR, DAY)
        }
        dirty = list(DirtyMinute.objects.values_list("id", "minute"))
        dirty_minutes = {_epoch(minute) for _, minute in dirty}
        # Finest first: an hour is rebuilt from raw, a day from its (rebuilt) hours.
        for tier in (MINUTE, HOUR, DAY):
            state = states[tier]
            buckets = {minute // tier * tier for minute in dirty_minutes}
            inside = {b for b in buckets if state.built_from <= _from_epoch(b) < state.built_until}
            written[tier] += _rebuild_buckets(tier, inside)
            # History recorded after the first run lies before built_from: extend the tier backwards.
            earlier = [b for b in buckets if _from_epoch(b) < state.built_from]
            if earlier:
                floor = retention_start(tier, now)
                new_from = max(_from_epoch(min(earlier)), floor) if floor else _from_epoch(min(earlier))
                if new_from < state.built_from:
                    written[tier] += _build_range(tier, new_from, state.built_from)
                    state.built_from = new_from
                    state.save(update_fields=["built_from"])
        ids = [pk for pk, _ in dirty]
        for start in range(0, len(ids), 5000):
            DirtyMinute.objects.filter(id__in=ids[start:start + 5000]).delete()

        until = {MINUTE: floor_time(now - LAG, MINUTE)}
        until[HOUR] = floor_time(until[MINUTE], HOUR)
        until[DAY] = floor_time(until[HOUR], DAY)
        for tier in (MINUTE, HOUR, DAY):
            state = states[tier]
            if state.built_until < until[tier]:
                written[tier] += _build_range(tier, state.built_until, until[tier])
                state.built_until = until[tier]
                state.save(update_fields=["built_until"])
    _forget_built_tiers()
    if connection.vendor == "postgresql" and sum(written.values()) > ANALYZE_AFTER_ROWS:
        # After a backfill the planner's statistics still describe an empty table, and it would
        # scan by time instead of by metric name until autovacuum gets round to it.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {MetricRollup._meta.db_table}")
    result = {"minute_rows": written[MINUTE], "hour_rows": written[HOUR], "day_rows": written[DAY],
              "dirty_minutes": len(dirty)}
    logger.info("rollup_metrics: %s in %.2fs", ", ".join(f"{k}={v}" for k, v in result.items()),
                time.monotonic() - started)
    return result


def cleanup_rollups(now: datetime) -> dict[str, int]:
    removed = {}
    for tier in (MINUTE, HOUR, DAY):
        start = retention_start(tier, now)
        if start is None:
            continue
        with transaction.atomic():
            state = RollupState.objects.select_for_update().filter(tier=tier).first()
            count = delete_in_batches(MetricRollup.objects.filter(tier=tier, bucket_start__lt=start))
            if state and state.built_from < start:
                state.built_from = min(start, state.built_until)
                state.save(update_fields=["built_from"])
        removed[f"{RollupTier(tier).label} rollups"] = count
    _forget_built_tiers()
    return removed
