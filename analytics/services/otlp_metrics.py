"""One OTLP metrics export → metric events of the query layer (docs/otlp.md).

    ingest_metrics(org, request, *, now=None) -> IntakeResult

What each kind of point becomes. Names are kept as sent (a name must be 1-200 printable characters with no
surrounding spaces, suffix included, or the point is rejected); ``unit`` is the metric's; ``source`` is
"otlp"; tags are the resource's attributes merged with the point's (the point's win; scope attributes are
not tags), at most MAX_TAGS — the rest are dropped and counted in ``dropped_attributes``.

- **Gauge**: a gauge event per point, the value as sent.
- **Sum**, monotonic: counter events holding increments. DELTA: the value is the increment. CUMULATIVE:
  the value is a total, turned into increments (below).
- **Sum**, not monotonic (an UpDownCounter): a gauge event of the value as sent — for CUMULATIVE that is
  the current level, for DELTA the change over the point's interval.
- **Histogram**: ``<name>.count`` and ``<name>.sum`` counters (same DELTA / CUMULATIVE handling), and,
  where explicit bounds allow, the gauges ``<name>.p50``, ``<name>.p95``, ``<name>.p99`` estimated from the
  buckets of the point's interval (``estimate_quantile``).
- **ExponentialHistogram**: the same; quantiles for DELTA points only (a cumulative one's buckets may
  change scale between points, so their increments are not estimated).
- **Summary**: ``<name>.count`` and ``<name>.sum`` counters (a summary's count and sum are totals since its
  start time: CUMULATIVE), and its quantile values 0.5 / 0.95 / 0.99, when sent, as ``<name>.p50`` etc.
- A point flagged ``NO_RECORDED_VALUE`` (a staleness marker) is skipped: neither stored nor rejected.

Cumulative totals become increments with per-series state (``OtlpCumulativeState``: org, name, hash of the
sorted tags), updated in the transaction that stores the events, so it survives restarts of the platform.
The rules follow Prometheus' ``rate()`` / ``increase()`` with created timestamps:

1. A point at or before the series' last time is a repeat: counted in ``duplicates``, stores nothing (the
   same export sent twice stores once; an out-of-order point is dropped the same way).
2. The first point of a series: when it carries a start time, everything it counts happened since then,
   so the increment is the total itself (Prometheus injects a zero at the created timestamp). Without a
   start time the total may include counts from before anyone listened: it only seeds the state (nothing
   stored, nothing rejected) and the next point gives the first increment.
3. A reset — the start time changed (both set), or the total (count, sum or any bucket) went down — is a
   restart of the exporting process: the increment is the new total.
4. Otherwise the increment is the new total minus the last one.

Idempotency of the rest: every event gets ``event_id = "otlp:" + sha1(name, sorted tags, time_unix_nano)``
(45 characters), which ``ingest_metric_items`` stores once per org.

Rejected points (counted per point; every reason kept, the first first, e.g. "3 points older than the
retention period (90 days)"): no ``time_unix_nano``; older than ANALYTICS_DB_RETENTION_DAYS or more than 5
minutes in the future; a value (or count, sum, bound) not finite or beyond ±MAX_MAGNITUDE; a negative value
of a monotonic sum or a negative histogram / summary sum (OTLP leaves ``sum`` unset when negative values
are recorded); a Sum without aggregation temporality; a bad name. A rejected point writes none of its
series and does not advance any state.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from analytics.models import MetricType, Organization, OtlpCumulativeState
from analytics.models.metrics import canonical_tags
from analytics.platform.contracts import MAX_FUTURE, MAX_MAGNITUDE, NAME
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.otlp_common import IntakeResult, attribute_map, merged_tags, nanos_to_datetime, printable

SOURCE = "otlp"
NAME_MAX, UNIT_MAX = 200, 32
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
LONGEST_SUFFIX = ".count"
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_NAME = re.compile(NAME)

REASONS = {
    "no_time": "without a time (time_unix_nano)",
    "too_old": "older than the retention period ({days} days)",
    "future": "more than 5 minutes in the future",
    "value": f"with a value that is not a finite number within ±{MAX_MAGNITUDE:g}",
    "negative": "of a monotonic sum or a histogram sum with a negative value",
    "temporality": "of a Sum without aggregation temporality",
    "name": f"whose metric name is not 1-{NAME_MAX} printable characters without surrounding spaces "
            "(suffix included)",
}

# A bucket for quantile estimates: (lower bound, upper bound, count).
Bucket = tuple[float, float, float]


class Rejected(Exception):  # noqa: N818  (a point refused, not an error of the intake)
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class PointContext:
    """What every event of one data point shares."""

    name: str
    unit: str
    tags: dict[str, str]
    time: int
    timestamp: datetime

    def event(self, name: str, value: float, metric_type: MetricType) -> MetricItem:
        return MetricItem(metric_name=name, value=value, metric_type=metric_type, unit=self.unit, source=SOURCE,
                          tags=self.tags, timestamp=self.timestamp, event_id=event_id(name, self.tags, self.time))


@dataclass(frozen=True)
class Explicit:
    """A histogram's explicit bounds and (cumulative or per-interval) bucket counts, len(bounds) + 1."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]

    def as_json(self) -> dict:
        return {"bounds": list(self.bounds), "counts": list(self.counts)}

    @classmethod
    def from_json(cls, data) -> Explicit | None:
        if not data:
            return None
        return cls(tuple(data["bounds"]), tuple(data["counts"]))


@dataclass(frozen=True)
class CumulativePoint:
    """A cumulative point waiting for its series' state: ``value`` is the total (a histogram's count)."""

    context: PointContext
    kind: str  # "sum", "histogram" or "summary"
    start: int
    value: float
    sum: float | None = None
    buckets: Explicit | None = None
    low: float | None = None  # a histogram's min and max, which bound its quantile estimates
    high: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.context.name, tags_hash(self.context.tags)


@dataclass
class Intake:
    """What reading one export collects: events ready to store, cumulative points, rejections."""

    now: datetime
    items: list[MetricItem] = field(default_factory=list)
    cumulative: list[CumulativePoint] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    dropped_attributes: int = 0
    duplicates: int = 0

    def reject(self, code: str) -> None:
        self.rejections[code] = self.rejections.get(code, 0) + 1

    def reason(self) -> str:
        days = settings.ANALYTICS_DB_RETENTION_DAYS
        return "; ".join(f"{count} point{'' if count == 1 else 's'} {REASONS[code].format(days=days)}"
                         for code, count in self.rejections.items())

    def context(self, metric, point, resource: dict[str, str], *, suffixed: bool = False) -> PointContext:
        """The point's name, time and tags checked (raises Rejected); counts the attributes dropped."""
        check_name(metric.name, suffixed=suffixed)
        timestamp = self.timestamp(point.time_unix_nano)
        tags, dropped = merged_tags(resource, attribute_map(point.attributes))
        self.dropped_attributes += dropped
        return PointContext(metric.name, printable(metric.unit, UNIT_MAX), tags, point.time_unix_nano, timestamp)

    def timestamp(self, nanos: int) -> datetime:
        moment = nanos_to_datetime(nanos)
        if moment is None:
            raise Rejected("no_time")
        if moment > self.now + MAX_FUTURE:
            raise Rejected("future")
        if moment < self.now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS):
            raise Rejected("too_old")
        return moment


def ingest_metrics(org: Organization, request: ExportMetricsServiceRequest, *,
                   now: datetime | None = None) -> IntakeResult:
    """Store one export's points as metric events of ``org``; see the module's docstring for the rules."""
    intake = Intake(now or timezone.now())
    for resource_metrics in request.resource_metrics:
        resource = attribute_map(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                read_metric(intake, metric, resource)
    with transaction.atomic():
        items = intake.items + apply_cumulative(org, intake)
        stored = ingest_metric_items(org, items) if items else None
    return IntakeResult(
        accepted=stored.accepted if stored else 0,
        rejected=sum(intake.rejections.values()),
        duplicates=intake.duplicates + (stored.duplicates if stored else 0),
        reason=intake.reason(),
        dropped_attributes=intake.dropped_attributes,
    )


# --- Reading points ------------------------------------------------------------------------------


def read_metric(intake: Intake, metric, resource: dict[str, str]) -> None:
    kind = metric.WhichOneof("data")
    if kind is None:
        return
    reader = READERS[kind]
    for point in getattr(metric, kind).data_points:
        if point.flags & NO_RECORDED_VALUE:
            continue
        try:
            reader(intake, metric, point, resource)
        except Rejected as refused:
            intake.reject(refused.code)


def read_gauge(intake: Intake, metric, point, resource: dict[str, str]) -> None:
    value = number_value(point)
    context = intake.context(metric, point, resource)
    intake.items.append(context.event(metric.name, value, MetricType.GAUGE))


def read_sum(intake: Intake, metric, point, resource: dict[str, str]) -> None:
    value = number_value(point)
    if not metric.sum.is_monotonic:
        read_gauge(intake, metric, point, resource)
        return
    temporality = temporality_of(metric.sum)
    if value < 0:
        raise Rejected("negative")
    context = intake.context(metric, point, resource)
    if temporality == DELTA:
        intake.items.append(context.event(metric.name, value, MetricType.COUNTER))
    else:
        intake.cumulative.append(CumulativePoint(context, "sum", start_of(point), value))


def read_histogram(intake: Intake, metric, point, resource: dict[str, str]) -> None:
    temporality = temporality_of(metric.histogram)
    count, total = float(point.count), optional_sum(point)
    buckets = explicit_buckets(point)
    low, high = optional_finite(point, "min"), optional_finite(point, "max")
    context = intake.context(metric, point, resource, suffixed=True)
    if temporality == DELTA:
        triples = explicit_triples(buckets) if buckets else None
        intake.items.extend(histogram_events(context, count, total, triples, low, high))
    else:
        intake.cumulative.append(CumulativePoint(context, "histogram", start_of(point), count, total, buckets,
                                                 low, high))


def read_exponential_histogram(intake: Intake, metric, point, resource: dict[str, str]) -> None:
    temporality = temporality_of(metric.exponential_histogram)
    count, total = float(point.count), optional_sum(point)
    low, high = optional_finite(point, "min"), optional_finite(point, "max")
    context = intake.context(metric, point, resource, suffixed=True)
    if temporality == DELTA:
        intake.items.extend(histogram_events(context, count, total, exponential_triples(point), low, high))
    else:
        intake.cumulative.append(CumulativePoint(context, "histogram", start_of(point), count, total))


def read_summary(intake: Intake, metric, point, resource: dict[str, str]) -> None:
    total = finite(point.sum)
    if total < 0:
        raise Rejected("negative")
    quantiles = {label: finite(item.value) for item in point.quantile_values
                 for label, q in QUANTILES.items() if math.isclose(item.quantile, q)}
    context = intake.context(metric, point, resource, suffixed=True)
    intake.items.extend(context.event(f"{metric.name}.{label}", value, MetricType.GAUGE)
                        for label, value in quantiles.items())
    intake.cumulative.append(CumulativePoint(context, "summary", start_of(point), float(point.count), total))


READERS = {
    "gauge": read_gauge,
    "sum": read_sum,
    "histogram": read_histogram,
    "exponential_histogram": read_exponential_histogram,
    "summary": read_summary,
}


def check_name(name: str, *, suffixed: bool) -> None:
    longest = len(name) + (len(LONGEST_SUFFIX) if suffixed else 0)
    if not name or longest > NAME_MAX or not _NAME.match(name):
        raise Rejected("name")


def finite(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise Rejected("value")
    return float(value)


def number_value(point) -> float:
    """A NumberDataPoint's value (``as_double`` or ``as_int``); a point with neither is 0, as protobuf reads it."""
    if point.WhichOneof("value") == "as_int":
        return finite(float(point.as_int))
    return finite(point.as_double)


def optional_finite(point, name: str) -> float | None:
    return finite(getattr(point, name)) if point.HasField(name) else None


def optional_sum(point) -> float | None:
    total = optional_finite(point, "sum")
    if total is not None and total < 0:
        raise Rejected("negative")
    return total


def temporality_of(data) -> int:
    if data.aggregation_temporality not in (DELTA, CUMULATIVE):
        raise Rejected("temporality")
    return data.aggregation_temporality


def start_of(point) -> int:
    """The point's start time; 0 (unknown) when unset or, against the spec, after the point's time."""
    start = point.start_time_unix_nano
    return start if 0 < start <= point.time_unix_nano else 0


def event_id(name: str, tags: dict[str, str], time_unix_nano: int) -> str:
    text = "\x1e".join((name, canonical_tags(tags), str(time_unix_nano)))
    return "otlp:" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def tags_hash(tags: dict[str, str]) -> str:
    return hashlib.sha1(canonical_tags(tags).encode(), usedforsecurity=False).hexdigest()


# --- Histograms and quantile estimates ----------------------------------------------------------------


def explicit_buckets(point) -> Explicit | None:
    """A histogram point's buckets, when they can be used: len(bounds) + 1 counts, bounds finite, rising."""
    bounds, counts = tuple(point.explicit_bounds), tuple(point.bucket_counts)
    if not bounds or len(counts) != len(bounds) + 1:
        return None
    if not all(math.isfinite(bound) for bound in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
        return None
    return Explicit(bounds, counts)


def explicit_triples(buckets: Explicit) -> list[Bucket]:
    """Explicit buckets as Prometheus reads them: the first bucket spans from 0 to its bound (or is its bound,
    if that is ≤ 0), the overflow bucket is its lower bound (the highest finite one)."""
    bounds, counts = buckets.bounds, buckets.counts
    first = (0.0 if bounds[0] > 0 else bounds[0], bounds[0], counts[0])
    middle = [(bounds[i - 1], bounds[i], counts[i]) for i in range(1, len(bounds))]
    return [first, *middle, (bounds[-1], bounds[-1], counts[-1])]


def exponential_triples(point) -> list[Bucket] | None:
    """An exponential histogram's buckets, ascending: index i of scale s spans (base^i, base^(i+1)] with
    base = 2^(2^-s), negative buckets mirrored, the zero bucket [-threshold, threshold] between them."""
    try:
        base = 2.0 ** (2.0 ** -point.scale)

        def spans(buckets, sign):
            for index, count in enumerate(buckets.bucket_counts, start=buckets.offset):
                low, high = base ** index, base ** (index + 1)
                yield (-high, -low, count) if sign < 0 else (low, high, count)

        negative = sorted(spans(point.negative, -1))
        positive = list(spans(point.positive, 1))
    except OverflowError:
        return None
    threshold = point.zero_threshold
    return [*negative, (-threshold, threshold, point.zero_count), *positive]


def estimate_quantile(q: float, buckets: list[Bucket], low: float | None = None,
                      high: float | None = None) -> float | None:
    """The q-quantile of bucketed observations, Prometheus' ``histogram_quantile`` method: the rank q·total is
    found in the first bucket whose running count reaches it, and the value is interpolated linearly between
    that bucket's bounds, as if its observations were spread evenly. The estimate is then clamped into the
    point's [min, max] when it carries them. None when the buckets hold no observation."""
    total = sum(count for _, _, count in buckets)
    if total <= 0:
        return None
    rank, seen = q * total, 0.0
    estimate = buckets[-1][1]
    for lower, upper, count in buckets:
        if count > 0 and seen + count >= rank:
            estimate = lower + (upper - lower) * (rank - seen) / count
            break
        seen += count
    if low is not None:
        estimate = max(estimate, low)
    if high is not None:
        estimate = min(estimate, high)
    return estimate


def histogram_events(context: PointContext, count: float, total: float | None, buckets: list[Bucket] | None,
                     low: float | None, high: float | None) -> list[MetricItem]:
    """A histogram interval's events: ``.count`` and ``.sum`` increments, ``.p50``/``.p95``/``.p99`` estimates."""
    name = context.name
    events = [context.event(f"{name}.count", count, MetricType.COUNTER)]
    if total is not None:
        events.append(context.event(f"{name}.sum", total, MetricType.COUNTER))
    for label, q in QUANTILES.items() if buckets else ():
        estimate = estimate_quantile(q, buckets or [], low, high)
        if estimate is not None:
            events.append(context.event(f"{name}.{label}", estimate, MetricType.GAUGE))
    return events


# --- Cumulative points → increments ---------------------------------------------------------------------


def apply_cumulative(org: Organization, intake: Intake) -> list[MetricItem]:
    """The increments of the cumulative points, advancing (and locking) their series' state. In a transaction."""
    if not intake.cumulative:
        return []
    by_series: dict[tuple[str, str], list[CumulativePoint]] = defaultdict(list)
    for point in intake.cumulative:
        by_series[point.key].append(point)
    states = locked_states(org, set(by_series))
    events: list[MetricItem] = []
    for key, points in by_series.items():
        for point in sorted(points, key=lambda p: p.context.time):
            events.extend(advance(states[key], point, intake))
    OtlpCumulativeState.objects.bulk_update(
        list(states.values()), ["start_time_unix_nano", "time_unix_nano", "value", "sum", "buckets", "updated_at"])
    return events


def locked_states(org: Organization, keys: set[tuple[str, str]]) -> dict[tuple[str, str], OtlpCumulativeState]:
    """The state rows of ``keys``, created when missing (empty: ``time_unix_nano`` 0), locked on PostgreSQL
    (``select_for_update``, in primary-key order) so that concurrent exports of a series apply one by one."""
    def rows(lock: bool):
        query = OtlpCumulativeState.objects.filter(org=org, metric_name__in={name for name, _ in keys},
                                                   tags_hash__in={digest for _, digest in keys})
        if lock:
            query = query.select_for_update().order_by("pk")
        return {(row.metric_name, row.tags_hash): row for row in query if (row.metric_name, row.tags_hash) in keys}

    missing = keys - set(rows(lock=False))
    if missing:
        OtlpCumulativeState.objects.bulk_create(
            [OtlpCumulativeState(org=org, metric_name=name, tags_hash=digest) for name, digest in sorted(missing)],
            ignore_conflicts=True,  # another export may create the same series meanwhile
        )
    return rows(lock=True)


def advance(state: OtlpCumulativeState, point: CumulativePoint, intake: Intake) -> list[MetricItem]:
    """Apply one point to its series' state (rules 1-4 of the module docstring); returns its events."""
    if state.time_unix_nano and point.context.time <= state.time_unix_nano:
        intake.duplicates += 1
        return []
    first = not state.time_unix_nano
    if first and not point.start:
        events = []  # rule 2: seeds the state only
    else:
        events = increment_events(point, None if (first or is_reset(state, point)) else state)
    state.start_time_unix_nano, state.time_unix_nano = point.start, point.context.time
    state.value, state.sum = point.value, point.sum
    state.buckets = point.buckets.as_json() if point.buckets else None
    return events


def is_reset(state: OtlpCumulativeState, point: CumulativePoint) -> bool:
    if point.start and state.start_time_unix_nano and point.start != state.start_time_unix_nano:
        return True
    if point.value < state.value or (point.sum is not None and state.sum is not None and point.sum < state.sum):
        return True
    before = Explicit.from_json(state.buckets)
    return bool(point.buckets and before and before.bounds == point.buckets.bounds
                and any(now < then for now, then in zip(point.buckets.counts, before.counts, strict=True)))


def increment_events(point: CumulativePoint, previous: OtlpCumulativeState | None) -> list[MetricItem]:
    """The point's increments since ``previous`` (None: since its start, the whole total)."""
    context = point.context
    count = point.value - (previous.value if previous else 0.0)
    if point.kind == "sum":
        return [context.event(context.name, count, MetricType.COUNTER)]
    total = point.sum
    if total is not None and previous is not None:
        total = total - previous.sum if previous.sum is not None else None
    return histogram_events(context, count, total, interval_buckets(point, previous), point.low, point.high)


def interval_buckets(point: CumulativePoint, previous: OtlpCumulativeState | None) -> list[Bucket] | None:
    """The buckets of the interval since ``previous``; None when unknown (no buckets, or bounds changed)."""
    if point.buckets is None:
        return None
    if previous is None:
        return explicit_triples(point.buckets)
    before = Explicit.from_json(previous.buckets)
    if before is None or before.bounds != point.buckets.bounds:
        return None
    counts = tuple(now - then for now, then in zip(point.buckets.counts, before.counts, strict=True))
    return explicit_triples(Explicit(point.buckets.bounds, counts))
