"""SLA arithmetic over a check history: pure functions, no database.

Time-weighted: each result holds from its check until the next one, for at most
``max_hold`` (two intervals); time not covered by a result is ``unknown``.
Uptime = (healthy + degraded time) / time with a known status. A downtime incident is
a maximal span of unhealthy time. Figures of adjacent periods ``merge`` into exactly
the figures of the whole period (response-time percentiles need the raw values).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from analytics.services import percentiles

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "healthy", "degraded", "unhealthy", "unknown"
STATUSES = (HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN)


@dataclass(frozen=True)
class Result:
    checked_at: datetime
    status: str
    response_time_ms: float | None = None  # None for a failed check: it measured no answer


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    status: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def timeline(results: Sequence[Result], start: datetime, end: datetime, max_hold: timedelta) -> list[Segment]:
    """The status over [start, end) as adjacent segments (same-status neighbours joined)."""
    results = sorted(results, key=lambda result: result.checked_at)
    segments: list[Segment] = []

    def add(seg_start, seg_end, status):
        seg_start, seg_end = max(seg_start, start), min(seg_end, end)
        if seg_end <= seg_start:
            return
        if segments and segments[-1].status == status and segments[-1].end == seg_start:
            segments[-1] = Segment(segments[-1].start, seg_end, status)
        else:
            segments.append(Segment(seg_start, seg_end, status))

    cursor = start
    for index, result in enumerate(results):
        if result.checked_at >= end:
            break
        following = results[index + 1].checked_at if index + 1 < len(results) else end
        held_until = min(following, result.checked_at + max_hold)
        if result.checked_at > cursor:
            add(cursor, result.checked_at, UNKNOWN)
        add(result.checked_at, held_until, result.status)
        cursor = max(cursor, held_until)
    add(cursor, end, UNKNOWN)
    return segments


def unhealthy_spans(segments: Iterable[Segment]) -> list[Segment]:
    return [segment for segment in segments if segment.status == UNHEALTHY]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile, ``q`` in percent as the figures name it (p95), by the API's one definition."""
    return percentiles.percentile(values, q / 100)


@dataclass
class Figures:
    """SLA figures of one period. ``response_times`` is None when they come from a stored daily summary."""

    start: datetime
    end: datetime
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0.0))
    downtime_incidents: int = 0
    starts_unhealthy: bool = False
    ends_unhealthy: bool = False
    response_count: int = 0
    avg_response_time_ms: float | None = None
    p95_response_time_ms: float | None = None
    response_times: tuple[float, ...] | None = ()
    source: str = "raw"

    @property
    def known_seconds(self) -> float:
        return self.seconds[HEALTHY] + self.seconds[DEGRADED] + self.seconds[UNHEALTHY]

    @property
    def uptime_percentage(self) -> float | None:
        if self.known_seconds <= 0:
            return None
        return 100.0 * (self.seconds[HEALTHY] + self.seconds[DEGRADED]) / self.known_seconds

    @property
    def downtime_minutes(self) -> float:
        return self.seconds[UNHEALTHY] / 60

    @property
    def known_minutes(self) -> float:
        return self.known_seconds / 60

    @property
    def unknown_minutes(self) -> float:
        return self.seconds[UNKNOWN] / 60

    def compliant(self, target: float) -> bool | None:
        uptime = self.uptime_percentage
        return None if uptime is None else uptime >= target

    def error_budget_remaining_minutes(self, target: float) -> float:
        """Allowed downtime ((100 - target)% of the known time) minus the downtime; negative when overspent."""
        return (100 - target) / 100 * self.known_minutes - self.downtime_minutes


def figures(segments: Sequence[Segment], results: Sequence[Result], start: datetime, end: datetime) -> Figures:
    """Figures over [start, end) from a timeline covering it and the results checked in it."""
    clipped = [Segment(max(s.start, start), min(s.end, end), s.status) for s in segments
               if s.end > start and s.start < end]
    seconds = dict.fromkeys(STATUSES, 0.0)
    for segment in clipped:
        seconds[segment.status] += segment.seconds
    times = tuple(r.response_time_ms for r in results
                  if start <= r.checked_at < end and r.response_time_ms is not None)
    return Figures(
        start=start, end=end, seconds=seconds,
        downtime_incidents=len(unhealthy_spans(clipped)),
        starts_unhealthy=bool(clipped) and clipped[0].status == UNHEALTHY and clipped[0].start == start,
        ends_unhealthy=bool(clipped) and clipped[-1].status == UNHEALTHY and clipped[-1].end == end,
        response_count=len(times),
        avg_response_time_ms=sum(times) / len(times) if times else None,
        p95_response_time_ms=percentile(times, 95),
        response_times=times,
    )


def merge(parts: Sequence[Figures]) -> Figures:
    """Figures of adjacent periods (in order) combined into those of the whole."""
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return parts[0]
    seconds = dict.fromkeys(STATUSES, 0.0)
    incidents = 0
    for index, part in enumerate(parts):
        for status in STATUSES:
            seconds[status] += part.seconds[status]
        incidents += part.downtime_incidents
        # An outage running over a boundary is one incident, not two.
        if index and parts[index - 1].ends_unhealthy and part.starts_unhealthy:
            incidents -= 1
    count = sum(part.response_count for part in parts)
    # A period with no responses has no average (None) and adds nothing.
    total = sum(part.avg_response_time_ms * part.response_count for part in parts
                if part.avg_response_time_ms is not None)
    known = [part.response_times for part in parts if part.response_times is not None]
    times = tuple(value for part_times in known for value in part_times) if len(known) == len(parts) else None
    return Figures(
        start=parts[0].start, end=parts[-1].end, seconds=seconds, downtime_incidents=incidents,
        starts_unhealthy=parts[0].starts_unhealthy, ends_unhealthy=parts[-1].ends_unhealthy,
        response_count=count, avg_response_time_ms=total / count if count else None,
        # A percentile cannot be merged from summaries.
        p95_response_time_ms=percentile(times, 95) if times is not None else None,
        response_times=times, source="raw" if all(p.source == "raw" for p in parts) else "rollup",
    )


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(moment: datetime) -> datetime:
    return day_start(moment).replace(day=1)


def next_month(moment: datetime) -> datetime:
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1)


def split_days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights."""
    pieces, cursor = [], start
    while cursor < end:
        boundary = min(day_start(cursor) + timedelta(days=1), end)
        pieces.append((cursor, boundary))
        cursor = boundary
    return pieces
