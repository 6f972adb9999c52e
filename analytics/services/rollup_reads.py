"""How the metrics query layer answers from rollups (used only by ``metrics_query``).

A window is covered by the coarsest rollup buckets that fit inside it, are built
and are not dirty; what is left (ragged edges, the still-open minute, dirty
minutes) is read from raw events. Counts, sums, min and max combine exactly;
percentiles come from the merged sketches (within 1%).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db import connection

from analytics.models import DirtyMinute, MetricEvent, MetricRollup, RollupTier
from analytics.platform.sql import one_of
from analytics.services.rollups import bucket_epoch, built_tiers, ceil_time, epoch_sql, floor_time
from analytics.services.sketch import Sketch

TIERS = [RollupTier.WEEK, RollupTier.DAY, RollupTier.HOUR, RollupTier.MINUTE]
# Past this much raw time in a plan, the exact SQL path is cheaper than loading raw values.
MAX_RAW_SPAN = timedelta(hours=2)


@dataclass(frozen=True)
class Segment:
    tier: int | None  # None: raw events
    start: datetime
    end: datetime
    closed: bool = False  # the window's own end is inclusive
    part: int = 0  # which answer the segment counts towards (one per time-series bucket, say)


@dataclass
class Partial:
    """What a group has so far: exact count, sum, min and max, and sketches (built, or stored blobs)."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    sketches: list[Sketch] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)  # rollup rows' sketches, decoded together by stats()

    def add(self, count, total, low, high, sketch: Sketch | None = None, blob: bytes | None = None) -> None:
        if not count:
            return
        self.count += int(count)
        self.sum += float(total)
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        if sketch is not None:
            self.sketches.append(sketch)
        if blob is not None:
            self.blobs.append(blob)

    def stats(self, fractions=None) -> dict:
        """count, sum, avg, min and max; with ``fractions`` (those of p50, p95 and p99) the percentiles too."""
        if not self.count:
            return {}
        figures = {"count": self.count, "sum": self.sum, "avg": self.sum / self.count, "min": self.min,
                   "max": self.max}
        if fractions is not None:
            sketches = [*self.sketches, Sketch.merge_blobs(self.blobs)] if self.blobs else self.sketches
            p50, p95, p99 = Sketch.merge(sketches).quantiles(fractions, self.min, self.max)
            figures.update(p50=p50, p95=p95, p99=p99)
        return figures


class Coverage:
    """Which rollup buckets exist and which minutes of these series are dirty."""

    def __init__(self, start: datetime, end: datetime, series_ids):
        self.tiers = built_tiers()
        self.dirty = set()
        series_ids = list(series_ids)
        if self.tiers and series_ids:
            ops = connection.ops
            in_series, series_params = one_of("series_id", series_ids)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT DISTINCT {epoch_sql('minute')} FROM {DirtyMinute._meta.db_table} "
                    f"WHERE {in_series} AND minute >= %s AND minute <= %s",
                    [*series_params, ops.adapt_datetimefield_value(start - timedelta(days=1)),
                     ops.adapt_datetimefield_value(end)])
                self.dirty = {row[0] for row in cursor.fetchall()}

    def plan(self, start: datetime, end: datetime, *, closed: bool = True, part: int = 0) -> list[Segment]:
        """Segments covering [start, end), plus the instant ``end`` itself when the window is closed."""
        segments = self._cover(start, end, TIERS)
        if closed:
            segments.append(Segment(None, end, end, closed=True))
        return [Segment(s.tier, s.start, s.end, s.closed, part) for s in segments]

    def _cover(self, start, end, tiers) -> list[Segment]:
        if start >= end:
            return []
        if not tiers:
            return [Segment(None, start, end)]
        tier, finer = tiers[0], tiers[1:]
        if tier not in self.tiers:
            return self._cover(start, end, finer)
        built_from, built_until = self.tiers[tier]
        first = max(ceil_time(start, tier), ceil_time(built_from, tier))
        last = min(floor_time(end, tier), floor_time(built_until, tier))
        if first >= last:
            return self._cover(start, end, finer)
        segments = self._cover(start, first, finer)
        dirty = sorted({bucket_epoch(m, tier) for m in self.dirty if first.timestamp() <= m < last.timestamp()})
        run_start = first
        for bucket in dirty:
            bucket_start = datetime.fromtimestamp(bucket, first.tzinfo)
            if run_start < bucket_start:
                segments.append(Segment(tier, run_start, bucket_start))
            segments += self._cover(bucket_start, bucket_start + timedelta(seconds=tier), finer)
            run_start = bucket_start + timedelta(seconds=tier)
        if run_start < last:
            segments.append(Segment(tier, run_start, last))
        return segments + self._cover(last, end, finer)


def raw_span(segments: list[Segment], data_from: datetime | None = None) -> timedelta:
    """The time the plan reads from raw events, from ``data_from`` on: before it no raw row exists (the series'
    first event, or the raw retention cutoff), so empty time there costs an index lookup, not a scan."""
    total = timedelta()
    for segment in segments:
        if segment.tier is None:
            start = segment.start if data_from is None else max(segment.start, data_from)
            total += max(segment.end - start, timedelta())
    return total


def uses_rollups(segments: list[Segment]) -> bool:
    return any(s.tier is not None for s in segments)


def _labelled(segments: list[tuple[int, Segment]], column: str, with_tier: bool) -> tuple[str, str, list]:
    """SQL labelling each row with the index of the segment it falls in, and the matching filter."""
    ops = connection.ops
    cases, conditions, params = [], [], []
    for index, segment in segments:
        condition = f"({column} >= %s AND {column} {'<=' if segment.closed else '<'} %s)"
        bounds: list[int | str | None] = [ops.adapt_datetimefield_value(segment.start),
                                          ops.adapt_datetimefield_value(segment.end)]
        if with_tier:
            condition = f"(tier = %s AND {condition})"
            bounds = [segment.tier, *bounds]
        cases.append(f"WHEN {condition} THEN {index}")
        conditions.append(condition)
        params.append(bounds)
    label = f"CASE {' '.join(cases)} END"
    flat = [value for bounds in params for value in bounds]
    return label, " OR ".join(conditions), flat


def _raw_values(segments: list[Segment], series_ids: list[int], *, totals: bool = False) -> list[tuple]:
    """(segment index, series_id, value) of the raw events in the raw segments; with ``totals``, (segment
    index, series_id, count, sum, min, max) per segment and series instead, summed by the database."""
    raw = [(index, s) for index, s in enumerate(segments) if s.tier is None]
    if not raw or not series_ids:
        return []
    label, condition, params = _labelled(raw, "timestamp", with_tier=False)
    in_series, series_params = one_of("series_id", series_ids)
    columns, grouping = "value", ""
    if totals:
        columns, grouping = "COUNT(*), SUM(value), MIN(value), MAX(value)", " GROUP BY 1, 2"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {label}, series_id, {columns} FROM {MetricEvent._meta.db_table} "
            f"WHERE {in_series} AND ({condition}){grouping}", [*params, *series_params, *params])
        return cursor.fetchall()


def _rollup_rows(segments: list[Segment], *, name, org, series_ids, by_series: bool, sketches: bool = True):
    """(segment index, series_id, count, sum, min, max, sketch) of the segments' rollup rows, in one
    query: name rows (every series of the name) or the given series' rows. Without ``sketches``, (segment
    index, series_id, count, sum, min, max) per segment and series, summed by the database."""
    rolled = [(index, s) for index, s in enumerate(segments) if s.tier is not None]
    if not rolled:
        return []
    label, condition, params = _labelled(rolled, "bucket_start", with_tier=True)
    if by_series:
        scope, scope_params = one_of("series_id", series_ids)
    else:
        in_org, org_params = org.sql("org_id")  # org: a Scope; name rows are per org (NULL: the platform)
        scope, scope_params = f"series_id IS NULL AND name = %s AND {in_org}", [name, *org_params]
    columns, grouping = "count, sum, min, max, sketch", ""
    if not sketches:
        columns, grouping = "SUM(count), SUM(sum), MIN(min), MAX(max)", " GROUP BY 1, 2"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {label}, series_id, {columns} FROM {MetricRollup._meta.db_table} "
            f"WHERE {scope} AND ({condition}){grouping}", [*params, *scope_params, *params])
        return cursor.fetchall()


def mixed_partials(segments, *, name, org, series_groups: dict[int, int], whole_name: bool,
                   with_sketches: bool = True) -> dict[tuple[int, int], Partial]:
    """Per (segment part, group): the rollup rows and raw events of the segments combined, in two queries.

    ``series_groups`` maps each matching series to its group; ``whole_name`` means the
    question covers every series of the name (one group), so name rows can be read. Without
    ``with_sketches`` (no percentiles asked) the database sums the rows and no sketch is read.
    """
    partials: dict[tuple[int, int], Partial] = defaultdict(Partial)
    series_ids = list(series_groups)
    if not with_sketches:
        for rows in (_rollup_rows(segments, name=name, org=org, series_ids=series_ids, by_series=not whole_name,
                                  sketches=False),
                     _raw_values(segments, series_ids, totals=True)):
            for index, series_id, count, total, low, high in rows:
                group = 0 if whole_name else series_groups[series_id]
                partials[(segments[index].part, group)].add(count, total, low, high)
        return partials
    rows = _rollup_rows(segments, name=name, org=org, series_ids=series_ids, by_series=not whole_name)
    for index, series_id, count, total, low, high, blob in rows:
        group = 0 if whole_name else series_groups[series_id]
        partials[(segments[index].part, group)].add(count, total, low, high, blob=blob)
    values = defaultdict(list)
    for index, series_id, value in _raw_values(segments, series_ids):
        values[(segments[index].part, series_groups[series_id])].append(value)
    for key, found in values.items():
        array = np.asarray(found, dtype=np.float64)
        partials[key].add(array.size, array.sum(), float(array.min()), float(array.max()), Sketch.from_values(array))
    return partials


def bucket_rows(tier: int, start: datetime, end: datetime, *, name, org, series_ids, whole_name: bool,
                with_sketches: bool) -> list[tuple]:
    """(bucket epoch, count, sum, min, max, p50, p95, p99[, sketch]) of ``tier`` rows in [start, end)."""
    ops = connection.ops
    if whole_name:
        in_org, org_params = org.sql("org_id")  # org: a Scope
        scope, params = f"series_id IS NULL AND name = %s AND {in_org}", [name, *org_params]
    else:
        scope, params = one_of("series_id", series_ids)
    columns = f"{epoch_sql('bucket_start')}, count, sum, min, max, p50, p95, p99"
    if with_sketches:
        columns += ", sketch"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {MetricRollup._meta.db_table} "
            f"WHERE tier = %s AND {scope} AND bucket_start >= %s AND bucket_start < %s",
            [tier, *params, ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)])
        return cursor.fetchall()
