"""Building the rollup tiers behind the metrics query layer.

    rollup_metrics(now=None) -> dict        build what closed since the last run, rebuild dirty buckets
    mark_dirty(timestamps, now)              called by ingest for events that may land in rolled minutes
    cleanup_rollups(now) -> dict             minute and hour rows past their retention
    built_tiers() -> dict[tier, (from, until)]   (cached for a second)

Minute and hour rows are built from raw events, day rows from hour rows, week rows
(from Monday 00:00 UTC) from day rows. A run is
idempotent: each bucket it builds is deleted and written again in one
transaction, so running twice (or after late events) gives the same rows.

Freshness: a minute is built once it is LAG old. An event whose time is older than
LAG when it is recorded may belong to a minute that is already built, so ingest
marks that minute dirty: the query layer reads dirty minutes raw, and the next run
rebuilds the minute, its hour, its day and its week, for that series' metric name only.
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
from analytics.services.bulk_insert import insert_rows, read_columns
from analytics.services.percentiles import percentiles_of_sorted_groups
from analytics.services.sketch import Sketch, blobs_for_sorted_groups

logger = logging.getLogger(__name__)

LAG = timedelta(seconds=60)
# Raw events are read a chunk at a time: large enough that a backfill is a few hundred queries,
# small enough that a chunk of a busy metric fits in memory many times over.
RAW_CHUNK = timedelta(hours=6)
MINUTE, HOUR, DAY, WEEK = RollupTier.MINUTE, RollupTier.HOUR, RollupTier.DAY, RollupTier.WEEK
TIERS = (MINUTE, HOUR, DAY, WEEK)  # finest first: a day is built from its hours, a week from its days
FINER: dict[int, int] = {DAY: HOUR, WEEK: DAY}  # the tiers built by merging the rows of a finer one
# Week buckets start on Mondays, as ISO weeks and the query layer's 1w interval (1970-01-05 was the first).
# Minute, hour and day buckets are the same from this origin as from the epoch.
BUCKET_ORIGIN = 4 * 86400
MAX_SERIES_FILTER = 500
PERCENTILE_FRACTIONS = (0.5, 0.95, 0.99)
ANALYZE_AFTER_ROWS = 100_000


def bucket_epoch(epoch, seconds: int):
    """The start (epoch seconds) of the ``seconds`` bucket holding ``epoch`` (an int or a numpy array)."""
    return (epoch - BUCKET_ORIGIN) // seconds * seconds + BUCKET_ORIGIN


def floor_time(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(bucket_epoch(int(moment.timestamp()), seconds), UTC)


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
# Their PostgreSQL types, for a binary COPY (a first build writes about a row per raw event).
ROLLUP_TYPES = ["int4", "int8", "text", "int8", "timestamptz", "int8", "float8", "float8", "float8",
                "float8", "float8", "float8", "bytea"]


def epoch_sql(column: str) -> str:
    """SQL for a datetime column as whole epoch seconds (floored, on both databases)."""
    if connection.vendor == "postgresql":
        return f"floor(extract(epoch from {column}))::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _series_owners(series_ids) -> dict[int, tuple]:
    return {sid: (org_id, name) for sid, org_id, name in
            MetricSeries.objects.filter(id__in=list(series_ids)).values_list("id", "org_id", "name")}


def _raw_values(start: datetime, end: datetime, series_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series ids, epoch seconds, values) of the raw events in [start, end); only of ``series_ids`` if given."""
    ops = connection.ops
    sql = (f"SELECT series_id, {epoch_sql('timestamp')}, value FROM {MetricEvent._meta.db_table} "
           "WHERE timestamp >= %s AND timestamp < %s")
    params = [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
    # Past a few hundred series the whole span is read and filtered here: the statement stays inside
    # SQLite's parameter limit, and by then most of the span's rows are wanted anyway.
    narrow = series_ids is not None and len(series_ids) <= MAX_SERIES_FILTER
    if narrow:
        sql += f" AND series_id IN ({', '.join(['%s'] * len(series_ids))})"
        params += list(series_ids)
    if connection.vendor == "postgresql":
        ids, epochs, values = read_columns(sql, params, ["int8", "int8", "float8"])
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        if not fetched:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        data = np.array(fetched, dtype=np.float64)
        ids, epochs, values = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2]
    if series_ids is not None and not narrow:
        keep = np.isin(ids, np.array(sorted(series_ids), dtype=np.int64))
        ids, epochs, values = ids[keep], epochs[keep], values[keep]
    return ids, epochs, values


def _rows_from_values(tier: int, events: tuple[np.ndarray, np.ndarray, np.ndarray],
                      only_buckets: set[int] | None = None, owners: dict[int, tuple] | None = None):
    """Series and name rows of ``tier`` from raw ``events`` (see ``_raw_values``), for ``only_buckets`` if given.

    ``owners`` ({series id: (org id, name)}) must hold every series of each name in ``events``.
    """
    series_ids, epochs, values = events
    buckets = bucket_epoch(epochs, tier)
    if only_buckets is not None:
        keep = np.isin(buckets, np.array(sorted(only_buckets), dtype=np.int64))
        series_ids, buckets, values = series_ids[keep], buckets[keep], values[keep]
    if values.size == 0:
        return []
    if owners is None:
        owners = _series_owners(np.unique(series_ids).tolist())
    starts = {bucket: _from_epoch(bucket) for bucket in np.unique(buckets).tolist()}  # made once each
    rows = [(tier, *owners[group], group, starts[bucket], *figures)
            for group, bucket, *figures in _grouped_rows(series_ids, buckets, values)]
    # Name rows: every series of a metric name in an org together.
    name_keys = sorted(set(owners.values()), key=lambda key: (key[0] or 0, key[1]))
    name_index = {key: index for index, key in enumerate(name_keys)}
    lookup = {sid: name_index[owner] for sid, owner in owners.items()}
    name_groups = np.array([lookup[sid] for sid in series_ids.tolist()], dtype=np.int64)
    rows += [(tier, *name_keys[group], None, starts[bucket], *figures)
             for group, bucket, *figures in _grouped_rows(name_groups, buckets, values)]
    return rows


def _rows_from_finer(tier: int, bucket: datetime, names: set[str] | None = None) -> list[tuple]:
    """Rows of one ``tier`` bucket by merging the rows of the next finer tier inside it (of ``names`` if given)."""
    finer = FINER[tier]
    parts = defaultdict(list)
    finer_rows = MetricRollup.objects.filter(tier=finer, bucket_start__gte=bucket,
                                             bucket_start__lt=bucket + timedelta(seconds=tier))
    if names is not None:
        finer_rows = finer_rows.filter(name__in=names)
    for org_id, name, series_id, count, total, low, high, blob in finer_rows.values_list(
            "org_id", "name", "series_id", "count", "sum", "min", "max", "sketch"):
        parts[(org_id, name, series_id)].append((count, total, low, high, blob))
    rows = []
    for (org_id, name, series_id), pieces in parts.items():
        sketch = Sketch.merge_blobs(piece[4] for piece in pieces)
        low, high = min(p[2] for p in pieces), max(p[3] for p in pieces)
        rows.append((tier, org_id, name, series_id, bucket, sum(p[0] for p in pieces), sum(p[1] for p in pieces),
                     low, high, *sketch.quantiles(PERCENTILE_FRACTIONS, low, high), sketch.to_bytes()))
    return rows


def _replace(tier: int, bucket_filter: dict, rows: list[tuple]) -> int:
    MetricRollup.objects.filter(tier=tier, **bucket_filter).delete()
    return insert_rows(MetricRollup._meta.db_table, ROLLUP_COLUMNS, rows, types=ROLLUP_TYPES)


# --- State ------------------------------------------------------------------------------


def _earliest_event() -> datetime | None:
    first = MetricEvent.objects.order_by("timestamp").values_list("timestamp", flat=True).first()
    return first


def _states(now: datetime) -> dict[int, RollupState]:
    """Each tier's state, locked for the run. Only the first run looks for the earliest event: after a raw
    retention delete that index scan walks every dead entry until vacuum, and the states already say it."""
    states = {state.tier: state for state in RollupState.objects.select_for_update().filter(tier__in=TIERS)}
    missing = [tier for tier in TIERS if tier not in states]
    if missing:
        earliest = _earliest_event() or now
        for tier in missing:  # finest first
            start = floor_time(max(earliest, retention_start(tier, now) or earliest), tier)
            if tier == WEEK:  # merged from day rows: from the week of the first (the tier came after the others)
                start = floor_time(states[DAY].built_from, WEEK)
            states[tier] = RollupState.objects.create(tier=tier, built_from=start, built_until=start)
    return states


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
                                 HOUR: settings.ANALYTICS_ROLLUP_HOUR_DAYS, DAY: settings.ANALYTICS_ROLLUP_DAY_DAYS,
                                 WEEK: settings.ANALYTICS_ROLLUP_DAY_DAYS}  # week rows are kept as days are
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


def _rebuild_dirty(states: dict[int, RollupState], marks: list[tuple[int, datetime]], now: datetime) -> dict:
    """Rebuild the built buckets holding the dirty (series, minute) ``marks``, for the metric names of those
    series only: a late event costs the raw events of its name in its hour, not those of every metric.
    Every series of a name is rebuilt together, since the name rows merge them (all orgs: rows are
    replaced by name)."""
    written = dict.fromkeys(TIERS, 0)
    name_of = dict(MetricSeries.objects.filter(id__in={sid for sid, _ in marks}).values_list("id", "name"))
    dirty = {(name_of[sid], _epoch(minute)) for sid, minute in marks if sid in name_of}
    if not dirty:
        return written
    owners = {sid: (org_id, name) for sid, org_id, name in MetricSeries.objects.filter(
        name__in={name for name, _ in dirty}).values_list("id", "org_id", "name")}

    def built(tier: int, bucket: int) -> bool:
        return states[tier].built_from <= _from_epoch(bucket) < states[tier].built_until

    by_hour: dict[int, tuple[set[str], set[int]]] = defaultdict(lambda: (set(), set()))
    merged: dict[int, dict[int, set[str]]] = {tier: defaultdict(set) for tier in FINER}  # {tier: {bucket: names}}
    for name, minute in dirty:
        hour_names, hour_minutes = by_hour[bucket_epoch(minute, HOUR)]
        hour_names.add(name)
        hour_minutes.add(minute)
        for tier, names_by_bucket in merged.items():
            names_by_bucket[bucket_epoch(minute, tier)].add(name)
    # Minute and hour rows from one read of each dirty hour.
    for hour, (names, minutes) in sorted(by_hour.items()):
        minutes = {minute for minute in minutes if built(MINUTE, minute)}
        if not minutes and not built(HOUR, hour):
            continue
        start = _from_epoch(hour)
        series_ids = [sid for sid, (_, name) in owners.items() if name in names]
        events = _raw_values(start, start + timedelta(hours=1), series_ids)
        if minutes:
            buckets = [_from_epoch(minute) for minute in minutes]
            written[MINUTE] += _replace(MINUTE, {"bucket_start__in": buckets, "name__in": names},
                                        _rows_from_values(MINUTE, events, minutes, owners))
        if built(HOUR, hour):
            written[HOUR] += _replace(HOUR, {"bucket_start": start, "name__in": names},
                                      _rows_from_values(HOUR, events, owners=owners))
    minutes = {minute for _, minute in dirty}
    for tier in (MINUTE, HOUR):
        written[tier] += _extend_backwards(tier, states[tier], minutes, now)
    # Days after all hours, weeks after all days: each is merged from the finer rows just written.
    for tier in (DAY, WEEK):
        for bucket, names in sorted(merged[tier].items()):
            if built(tier, bucket):
                start = _from_epoch(bucket)
                written[tier] += _replace(tier, {"bucket_start": start, "name__in": names},
                                          _rows_from_finer(tier, start, names))
        written[tier] += _extend_backwards(tier, states[tier], minutes, now)
    return written


def _extend_backwards(tier: int, state: RollupState, minutes: set[int], now: datetime) -> int:
    """History recorded after the first run lies before built_from: build the tier back to its earliest
    dirty bucket (or to the tier's retention)."""
    earlier = [bucket_epoch(minute, tier) for minute in minutes
               if _from_epoch(bucket_epoch(minute, tier)) < state.built_from]
    if not earlier:
        return 0
    floor = retention_start(tier, now)
    new_from = max(_from_epoch(min(earlier)), floor) if floor else _from_epoch(min(earlier))
    if new_from >= state.built_from:
        return 0
    written = _build_range(tier, new_from, state.built_from)
    state.built_from = new_from
    state.save(update_fields=["built_from"])
    return written


def _build_range(tier: int, start: datetime, end: datetime) -> int:
    """Build every bucket of ``tier`` in [start, end): minute and hour rows from raw events (reading
    values is cheaper than decoding sixty minute sketches per hour), day and week rows by merging the rows
    of the finer tier."""
    written = 0
    if tier in FINER:
        bucket = start
        while bucket < end:
            written += _replace(tier, {"bucket_start": bucket}, _rows_from_finer(tier, bucket))
            bucket += timedelta(seconds=tier)
        return written
    while start < end:
        chunk_end = min(end, start + RAW_CHUNK)
        rows = _rows_from_values(tier, _raw_values(start, chunk_end))
        written += _replace(tier, {"bucket_start__gte": start, "bucket_start__lt": chunk_end}, rows)
        start = chunk_end
    return written


def rollup_metrics(now: datetime | None = None) -> dict[str, int]:
    """Build the buckets that closed since the last run and rebuild the dirty ones. Idempotent."""
    now = now or timezone.now()
    started = time.monotonic()
    written = dict.fromkeys(TIERS, 0)
    with transaction.atomic():
        states = _states(now)
        dirty = list(DirtyMinute.objects.values_list("id", "series_id", "minute"))
        if dirty:
            for tier, count in _rebuild_dirty(states, [(sid, minute) for _, sid, minute in dirty], now).items():
                written[tier] += count
            ids = [pk for pk, _, _ in dirty]
            for start in range(0, len(ids), 5000):
                DirtyMinute.objects.filter(id__in=ids[start:start + 5000]).delete()

        until = {MINUTE: floor_time(now - LAG, MINUTE)}
        until[HOUR] = floor_time(until[MINUTE], HOUR)
        until[DAY] = floor_time(until[HOUR], DAY)
        until[WEEK] = floor_time(until[DAY], WEEK)
        for tier in TIERS:
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
              "week_rows": written[WEEK], "dirty_minutes": len(dirty)}
    logger.info("rollup_metrics: %s in %.2fs", ", ".join(f"{k}={v}" for k, v in result.items()),
                time.monotonic() - started)
    return result


def cleanup_rollups(now: datetime) -> dict[str, int]:
    removed = {}
    for tier in TIERS:
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
