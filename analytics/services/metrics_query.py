"""The one metrics query layer: the only place that aggregates time series.

Skill analytics, alert rules, dashboards and exporters ask it; nothing else
aggregates metric events. Its Python interface is stable:

    statistics(name, window, *, org=ALL_ORGS, tags=None) -> Stats
    grouped_statistics(name, window, group_by, *, org=ALL_ORGS, tags=None, with_percentiles=True)
        -> list[Stats]
    time_series(name, window, *, interval="1h", aggregate="avg", org=ALL_ORGS, tags=None) -> TimeSeries
    time_series_of(name, window, *, interval="1h", aggregates, org=ALL_ORGS, tags=None) -> {aggregate: TimeSeries}
    list_metrics(*, org=ALL_ORGS) -> list[MetricInfo]
    aggregate_value(stats, aggregate, window) -> float | None     (one number of a Stats, incl. "rate")

``window`` is a ``services.windows.Window`` (start and end, both inclusive).
``org`` is a ``Scope`` (analytics.platform.scope): ALL_ORGS (staff and the in-process client),
PLATFORM, or one org; an Organization stands for its own scope.
``tags`` is a dict of key → value, ANDed. ``group_by`` is a list of tag keys.

Exact answers are computed in the database: count, sum, avg, min, max in SQL,
percentiles by linear interpolation between closest ranks (numpy's default):
``percentile_cont`` on PostgreSQL, window functions (ROW_NUMBER over the
ordered values) on SQLite. No window's values are loaded into Python.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min
from django.utils import timezone
from pydantic import Field, PlainSerializer
from typing_extensions import TypedDict

from analytics.models import MetricEvent, MetricSeries, MetricType
from analytics.platform.contracts import ResponseContract, Source
from analytics.platform.scope import ALL_ORGS, ScopeLike, as_scope
from analytics.platform.sql import one_of
from analytics.platform.windows import Window
from analytics.services import rollup_reads
from analytics.services.rollups import floor_time

PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
Aggregate = Literal["avg", "sum", "count", "min", "max", "p50", "p95", "p99", "rate"]
AGGREGATES = list(get_args(Aggregate))
Interval = Literal["1m", "5m", "15m", "1h", "6h", "1d", "1w"]
INTERVALS = dict(zip(get_args(Interval), (60, 300, 900, 3600, 21600, 86400, 604800), strict=True))
STAT_FIELDS = ["count", "sum", "avg", "min", "max", "p50", "p95", "p99"]
MAX_POINTS = 20_000
# Buckets are multiples of the interval counted from an origin: the Unix epoch, except for weeks, which
# start on Mondays 00:00 UTC like ISO weeks (the epoch was a Thursday; 1970-01-05 was the first Monday).
WEEK_ORIGIN = 4 * 86400


def bucket_origin(seconds: int) -> int:
    return WEEK_ORIGIN if seconds == INTERVALS["1w"] else 0


def bucket_of(epoch: int, seconds: int) -> int:
    """The start (epoch seconds) of the bucket of ``seconds`` holding ``epoch``."""
    origin = bucket_origin(seconds)
    return (epoch - origin) // seconds * seconds + origin


class Stats(ResponseContract):
    """The body of ``GET metrics/{name}/statistics``; null figures when the window is empty."""

    metric_name: str
    count: int = 0
    sum: float | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    start: datetime
    end: datetime
    source: Source = "raw"


class GroupStats(Stats):
    tags: dict[str, str | None] = Field(description="The group's tag values (null: the tag is absent).")


class GroupedStats(ResponseContract):
    """The body of ``GET metrics/{name}/statistics?group_by=...``."""

    metric_name: str
    start: datetime
    end: datetime
    source: Source
    groups: list[GroupStats] = Field(description="Most events first.")


class Point(TypedDict):
    timestamp: datetime
    value: float | None


def _points_body(points: list[tuple[datetime, float | None]]) -> list[Point]:
    return [{"timestamp": moment, "value": value} for moment, value in points]


class TimeSeries(ResponseContract):
    """The body of ``GET metrics/{name}/time-series``: one point per bucket, ``(start, value)`` in Python."""

    metric_name: str
    interval: Interval
    aggregate: Aggregate
    start: datetime
    end: datetime
    source: Source = "raw"
    points: Annotated[list[tuple[datetime, float | None]], PlainSerializer(_points_body, return_type=list[Point])] = \
        Field(default_factory=list, description="Each bucket's start (UTC-aligned) and value; null when empty.")


class MetricInfo(ResponseContract):
    name: str
    metric_type: MetricType
    unit: str
    series: int = Field(description="Series (distinct tag sets) of this name.")
    last_seen: datetime


# --- Which series a question is about ------------------------------------------------


def matching_series(name: str, *, org: ScopeLike = ALL_ORGS, tags: dict | None = None) -> list[tuple[int, dict]]:
    """(id, tags) of the series of ``name`` whose tags include ``tags`` (resolved on indexed tag rows)."""
    queryset = as_scope(org).filter(MetricSeries.objects.filter(name=name))
    for key, value in (tags or {}).items():
        queryset = queryset.filter(tag_rows__key=key, tag_rows__value=value)
    return list(queryset.values_list("id", "tags").distinct())


def series_ids(name: str, *, org: ScopeLike = ALL_ORGS, tags: dict | None = None) -> list[int]:
    """Ids of the matching series; without tag filters, one plain indexed query (it runs on every question)."""
    if tags:
        return [series_id for series_id, _ in matching_series(name, org=org, tags=tags)]
    in_scope, scope_params = as_scope(org).sql("org_id")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {MetricSeries._meta.db_table} WHERE name = %s AND {in_scope}",
                       [name, *scope_params])
        return [row[0] for row in cursor.fetchall()]


# --- SQL --------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _bucket_sql(seconds: int) -> str:
    """``bucket_of`` in SQL."""
    origin = bucket_origin(seconds)
    if _is_postgres():
        return f"(floor((extract(epoch from timestamp) - {origin}) / {seconds}) * {seconds} + {origin})::bigint"
    return f"(((CAST(strftime('%%s', timestamp) AS INTEGER) - {origin}) / {seconds}) * {seconds} + {origin})"


GROUP_COLUMN = "series_group.grp"


def _group_join(groups: dict[int, int]) -> tuple[str, list]:
    """A join giving each event its series' group number as ``GROUP_COLUMN``: (SQL, params).

    A join, not ``CASE series_id WHEN … THEN …``: a CASE compares each row with every series in turn, and the
    health scores of every skill ask about thousands of series at once; the join looks each series up once.
    """
    if _is_postgres():
        return ("JOIN unnest(%s::bigint[], %s::int[]) AS series_group(series_id, grp) USING (series_id)",
                [list(groups), list(groups.values())])
    pairs = ", ".join(f"({int(series_id)}, {int(group)})" for series_id, group in groups.items())
    return (f"JOIN (SELECT column1 AS series_id, column2 AS grp FROM (VALUES {pairs})) AS series_group "
            "USING (series_id)", [])


def _aggregate(series_ids, window: Window, group_sql: str, with_percentiles: bool,
               join: tuple[str, list] = ("", [])) -> dict[int, dict]:
    """{group: {count, sum, avg, min, max, p50, p95, p99}} over the window, one query; ``group_sql`` may read
    the columns ``join`` adds."""
    if not series_ids:
        return {}
    join_sql, join_params = join
    table = f"{MetricEvent._meta.db_table} {join_sql}"
    in_series, series_params = one_of("series_id", series_ids)
    where = f"{in_series} AND timestamp >= %s AND timestamp <= %s"
    ops = connection.ops
    params = [*join_params, *series_params, ops.adapt_datetimefield_value(window.start),
              ops.adapt_datetimefield_value(window.end)]
    # SUM / COUNT, not AVG: PostgreSQL's avg(float8) also keeps a sum of squares, which overflows (an error,
    # "value out of range") for unequal values above ~1e146 that the API accepts (up to 1e300).
    basic = "COUNT(*), SUM(value), SUM(value) / NULLIF(COUNT(*), 0), MIN(value), MAX(value)"
    names = list(PERCENTILES)
    if not with_percentiles:
        sql = f"SELECT {group_sql} AS grp, {basic} FROM {table} WHERE {where} GROUP BY 1"
    elif _is_postgres():
        fractions = ", ".join(str(p) for p in PERCENTILES.values())
        sql = (
            f"SELECT {group_sql} AS grp, {basic}, "
            f"percentile_cont(ARRAY[{fractions}]) WITHIN GROUP (ORDER BY value) "
            f"FROM {table} WHERE {where} GROUP BY 1"
        )
    else:
        picks = []
        for fraction in PERCENTILES.values():
            rank = f"({fraction} * (n - 1))"
            picks.append(
                f"MAX(CASE WHEN rn = CAST({rank} AS INTEGER) THEN value END), "
                f"MAX(CASE WHEN rn = MIN(CAST({rank} AS INTEGER) + 1, n - 1) THEN value END), "
                f"MAX({rank} - CAST({rank} AS INTEGER))"
            )
        sql = (
            f"WITH base AS (SELECT {group_sql} AS grp, value FROM {table} WHERE {where}), "
            "ranked AS (SELECT grp, value, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY value) - 1 AS rn, "
            "COUNT(*) OVER (PARTITION BY grp) AS n FROM base) "
            f"SELECT grp, {basic}, {', '.join(picks)} FROM ranked GROUP BY grp"
        )
    results = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            group, count, total, avg, low, high = row[:6]
            values = {"count": int(count), "sum": _f(total), "avg": _f(avg), "min": _f(low), "max": _f(high)}
            if with_percentiles and _is_postgres():
                values.update({name: _f(v) for name, v in zip(names, row[6], strict=True)})
            elif with_percentiles:
                for index, name in enumerate(names):
                    lo, hi, frac = row[6 + 3 * index: 9 + 3 * index]
                    values[name] = _f(lo + (hi - lo) * frac)
            results[int(group)] = values
    return results


def _f(value) -> float | None:
    return None if value is None else float(value)


# --- Questions -------------------------------------------------------------------------


def _use_raw_only(window: Window) -> bool:
    return window.duration <= timedelta(minutes=settings.ANALYTICS_RAW_QUERY_MAX_MINUTES)


def _first_event(series_ids) -> datetime | None:
    """The earliest event of these series (``first_seen`` moves back with late history): no tier holds older."""
    return MetricSeries.objects.filter(pk__in=list(series_ids)).aggregate(first=Min("first_seen"))["first"]


def _rollup_plan(window: Window, series_ids):
    """Segments of a plan that reads rollups, or None when the exact raw path is the better one.

    Time before the series' first event holds nothing in any tier, so the plan starts there: a 90-day window
    over a metric 12 days old is planned as its 30-day window is. The raw part is judged by the time that can
    hold raw rows: past the raw retention the remaining raw time is nothing, not days of raw events.
    """
    first = _first_event(series_ids)  # None only if no series row is found: planned from the start
    start = window.start if first is None else max(window.start, floor_time(first, 60))  # its first minute
    coverage = rollup_reads.Coverage(start, window.end, series_ids)
    segments = coverage.plan(start, window.end)
    if not rollup_reads.uses_rollups(segments):
        return None
    raw_from = None if first is None else max(
        first, timezone.now() - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS))
    if rollup_reads.raw_span(segments, raw_from) > rollup_reads.MAX_RAW_SPAN:
        return None
    return segments


def statistics(name: str, window: Window, *, org: ScopeLike = ALL_ORGS, tags: dict | None = None) -> Stats:
    org = as_scope(org)
    ids = series_ids(name, org=org, tags=tags)
    segments = None if (_use_raw_only(window) or not ids) else _rollup_plan(window, ids)
    if segments is None:
        found = _aggregate(ids, window, "0", with_percentiles=True).get(0, {})
        return Stats(metric_name=name, start=window.start, end=window.end, **found)
    partial = rollup_reads.mixed_partials(segments, name=name, org=org, series_groups=dict.fromkeys(ids, 0),
                                          whole_name=not tags)[(0, 0)]
    return Stats(metric_name=name, start=window.start, end=window.end, source="rollup",
                 **partial.stats(PERCENTILES.values()))


def grouped_statistics(name: str, window: Window, group_by: list[str], *, org: ScopeLike = ALL_ORGS,
                       tags: dict | None = None, with_percentiles: bool = True) -> list[GroupStats]:
    """Statistics per distinct combination of the ``group_by`` tag values (a missing tag is null).

    ``with_percentiles=False`` skips the costly part when only counts and sums are wanted.
    """
    org = as_scope(org)
    group_of: dict[int, int] = {}
    group_tags: list[dict] = []
    index_of: dict[tuple, int] = {}
    for series_id, series_tags in matching_series(name, org=org, tags=tags):
        key = tuple(series_tags.get(tag) for tag in group_by)
        if key not in index_of:
            index_of[key] = len(group_tags)
            group_tags.append(dict(zip(group_by, key, strict=True)))
        group_of[series_id] = index_of[key]
    segments = None if (_use_raw_only(window) or not group_of) else _rollup_plan(window, group_of)
    if segments is None:
        found = (_aggregate(list(group_of), window, GROUP_COLUMN, with_percentiles, join=_group_join(group_of))
                 if group_of else {})
        source = "raw"
    else:
        partials = rollup_reads.mixed_partials(segments, name=name, org=org, series_groups=group_of,
                                               whole_name=False, with_sketches=with_percentiles)
        fractions = PERCENTILES.values() if with_percentiles else None
        found = {group: partial.stats(fractions) for (_, group), partial in partials.items() if partial.count}
        source = "rollup"
    groups = [
        GroupStats(metric_name=name, start=window.start, end=window.end, tags=group_tags[index], source=source,
                   **values)
        for index, values in found.items()
    ]
    return sorted(groups, key=lambda stats: (-stats.count, sorted((k, v or "") for k, v in stats.tags.items())))


def grouped_statistics_body(name: str, window: Window, group_by: list[str], *, org: ScopeLike = ALL_ORGS,
                            tags: dict | None = None) -> GroupedStats:
    """Grouped statistics with the window; ``source`` is "rollup" when any group came from rollups."""
    groups = grouped_statistics(name, window, group_by, org=org, tags=tags)
    source = "rollup" if any(group.source == "rollup" for group in groups) else "raw"
    return GroupedStats(metric_name=name, start=window.start, end=window.end, source=source, groups=groups)


def aggregate_value(stats: Stats, aggregate: str, window: Window) -> float | None:
    """One number of a Stats; ``rate`` is the sum per second of the window (for counters: increments/s)."""
    if aggregate == "rate":
        return None if stats.sum is None else stats.sum / window.duration.total_seconds()
    if aggregate == "count":
        return stats.count
    return getattr(stats, aggregate)


def bucket_starts(window: Window, seconds: int) -> list[datetime]:
    """The starts of the buckets (see ``bucket_of``) covering the window."""
    first = bucket_of(int(window.start.timestamp()), seconds)
    last = bucket_of(int(window.end.timestamp()), seconds)
    return [datetime.fromtimestamp(moment, UTC) for moment in range(first, last + 1, seconds)]


def too_many_points(window: Window, seconds: int) -> str | None:
    """Why a series of ``seconds`` buckets over the window is refused, or None when it is not."""
    points = (bucket_of(int(window.end.timestamp()), seconds)
              - bucket_of(int(window.start.timestamp()), seconds)) // seconds + 1
    if points > MAX_POINTS:
        return f"{points} points: use a longer interval or a shorter window (at most {MAX_POINTS} points)."
    return None


def _point_value(values: dict | None, aggregate: str, seconds: float):
    if not values or not values.get("count"):
        return None
    if aggregate == "rate":
        return values["sum"] / seconds
    return values[aggregate]


def time_series(name: str, window: Window, *, interval: str = "1h", aggregate: str = "avg",
                org: ScopeLike = ALL_ORGS, tags: dict | None = None) -> TimeSeries:
    """One point per bucket (its start), ``None`` for an empty bucket."""
    return time_series_of(name, window, interval=interval, aggregates=[aggregate], org=org, tags=tags)[aggregate]


def time_series_of(name: str, window: Window, *, interval: str = "1h", aggregates: list[str],
                   org: ScopeLike = ALL_ORGS, tags: dict | None = None) -> dict[str, TimeSeries]:
    """{aggregate: its time series} of one metric, from one read of its buckets (a chart's p50, p95 and p99
    lines cost one read, not three)."""
    org = as_scope(org)
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    for aggregate in aggregates:
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
    seconds = INTERVALS[interval]
    problem = too_many_points(window, seconds)
    if problem:
        raise ValueError(problem)
    starts = bucket_starts(window, seconds)
    ids = series_ids(name, org=org, tags=tags)
    percentiles = any(aggregate in PERCENTILES for aggregate in aggregates)
    found = None if (_use_raw_only(window) or not ids) else _series_from_rollups(
        name, window, seconds, percentiles, org=org, ids=ids, whole_name=not tags, starts=starts)
    source = "rollup"
    if found is None:
        found = _aggregate(ids, window, _bucket_sql(seconds), with_percentiles=percentiles)
        source = "raw"
    return {
        aggregate: TimeSeries(
            metric_name=name, interval=interval, aggregate=aggregate, start=window.start, end=window.end,
            points=[(moment, _point_value(found.get(int(moment.timestamp())), aggregate, seconds))
                    for moment in starts],
            source=source)
        for aggregate in aggregates
    }


def _series_from_rollups(name, window, seconds, percentile: bool, *, org, ids, whole_name, starts):
    """{bucket epoch: stats} from rollup rows; buckets that rows cannot answer whole are planned one by one.

    A bucket is answered by rows of the coarsest tier dividing the interval when it lies inside the window,
    inside the built range and has no dirty minute. With one row per bucket (one org's name rows, or a
    single series) a percentile is read from the row's stored column, without merging sketches.
    """
    coverage = rollup_reads.Coverage(window.start, window.end, ids)
    tier = next((t for t in rollup_reads.TIERS if seconds % t == 0 and t in coverage.tiers), None)
    if tier is None:
        return None
    built_from, built_until = (int(moment.timestamp()) for moment in coverage.tiers[tier])
    dirty = {bucket_of(minute, seconds) for minute in coverage.dirty}
    window_start, window_end = window.start.timestamp(), window.end.timestamp()
    interior, edges = [], []
    for moment in starts:
        epoch = int(moment.timestamp())
        bucket_end = epoch + seconds
        if (epoch >= window_start and bucket_end <= window_end and built_from <= epoch
                and bucket_end <= built_until and epoch not in dirty):
            interior.append(moment)
        else:
            edges.append(moment)
    found: dict[int, dict] = {}
    if interior:
        single_row = seconds == tier and ((whole_name and not org.is_all) or len(ids) == 1)
        rows = rollup_reads.bucket_rows(
            tier, interior[0], interior[-1] + timedelta(seconds=seconds), name=name, org=org, series_ids=ids,
            whole_name=whole_name, with_sketches=percentile and not single_row,
        )
        interior_set = {int(moment.timestamp()) for moment in interior}
        partials: dict[int, rollup_reads.Partial] = {}
        for row in rows:
            bucket = bucket_of(row[0], seconds)
            if bucket not in interior_set:
                continue
            if single_row:
                count, total, low, high, p50, p95, p99 = row[1:8]
                found[bucket] = {"count": count, "sum": total, "avg": total / count if count else None,
                                 "min": low, "max": high, "p50": p50, "p95": p95, "p99": p99}
                continue
            partial = partials.setdefault(bucket, rollup_reads.Partial())
            partial.add(row[1], row[2], row[3], row[4], blob=row[8] if percentile else None)
        for bucket, partial in partials.items():
            found[bucket] = partial.stats(PERCENTILES.values() if percentile else None)
    segments = []
    for index, moment in enumerate(edges):
        start = max(moment, window.start)
        end = min(moment + timedelta(seconds=seconds), window.end)
        segments += coverage.plan(start, end, closed=end == window.end, part=index)
    edge_partials = rollup_reads.mixed_partials(segments, name=name, org=org, series_groups=dict.fromkeys(ids, 0),
                                                whole_name=whole_name, with_sketches=percentile) if segments else {}
    for (index, _), partial in edge_partials.items():
        if partial.count:
            found[int(edges[index].timestamp())] = partial.stats(PERCENTILES.values() if percentile else None)
    return found


def list_metrics(*, org: ScopeLike = ALL_ORGS) -> list[MetricInfo]:
    rows = (
        as_scope(org).filter(MetricSeries.objects.all()).values("name", "metric_type", "unit")
        .annotate(series=Count("id"), last_seen=Max("last_seen"))
        .order_by("name", "metric_type", "unit")
    )
    return [MetricInfo(**row) for row in rows]


__all__ = [
    "AGGREGATES", "ALL_ORGS", "INTERVALS", "MetricInfo", "Stats", "TimeSeries", "Window",
    "aggregate_value", "grouped_statistics", "list_metrics", "statistics", "time_series",
]
