"""The per-period analytics of users, agents and the platform (seed 003), computed from the activity events.

    compute_periods(period_type, start, end, *, org=None, now=None) -> TrackSummary
    compute_dirty(now=None) -> PassSummary          (every period marked dirty by new or late events)
    track_due(now=None) -> PassSummary              (the scheduled job: dirty periods + the current hour and day)
    platform_figures(org, start, end, *, previous_start=None, now=None) -> dict   (any window; the dashboard)
    resolve_range(period_type, start=None, end=None, *, now=None) -> (start, end)

One pass per period and org: a GROUP BY user, a GROUP BY agent (conditional aggregates), one ordered fetch of
the agent calls' response times for the percentiles, one fetch of heartbeats for the uptime, and the platform's
figures; the rows are upserted by their unique key, so computing a period again gives the same rows.
docs/activity.md ("Period analytics") defines each figure.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Exists, Min, OuterRef, Q, Sum
from django.utils import timezone

from analytics.models import (
    ActivityDirtyPeriod,
    ActivityEvent,
    AgentAnalytics,
    EventType,
    Organization,
    PeriodType,
    PlatformMetrics,
    UserAnalytics,
)
from analytics.platform.contracts import ResponseContract
from analytics.platform.windows import Window
from analytics.services import metrics_query
from analytics.services.percentiles import percentiles, percentiles_of_sorted_groups
from analytics.services.performance import RESPONSE_TIME_METRIC
from analytics.services.periods import PeriodTypeName, period_end, period_start, periods_between, previous_period

logger = logging.getLogger(__name__)

MAX_PERIODS = 1000
# The longest period of each type: a span longer than MAX_PERIODS of these surely holds too many periods.
LONGEST = {PeriodType.HOUR: timedelta(hours=1), PeriodType.DAY: timedelta(days=1),
           PeriodType.WEEK: timedelta(weeks=1), PeriodType.MONTH: timedelta(days=31)}
RESPONSE_TIME_FRACTIONS = (0.5, 0.95, 0.99)
AGENTS_PER_QUERY = 5000  # agent ids in one IN list (SQLite allows 32,766 parameters)
CONTRACT_ENDS = [EventType.CONTRACT_COMPLETED, EventType.CONTRACT_CANCELLED, EventType.CONTRACT_FAILED]

PLATFORM_FIGURES = [
    "users_total", "users_active", "users_new", "users_churned", "agents_total", "agents_active", "agents_new",
    "contracts_total", "contracts_active", "contracts_completed", "contracts_failed", "revenue", "platform_fees",
    "credits_purchased", "credits_spent", "avg_response_time_ms", "p95_response_time_ms", "error_rate",
    "throughput_per_minute", "api_calls", "orchestrations", "fraud_alerts", "security_events",
]
USER_FIGURES = [
    "sessions", "page_views", "actions", "active_seconds", "contracts_created", "contracts_completed",
    "contracts_cancelled", "credits_purchased", "credits_spent", "total_spent", "agents_used", "agent_ids",
    "orchestrations_run",
]
AGENT_FIGURES = [
    "calls", "successful_calls", "failed_calls", "success_rate", "avg_response_time_ms", "p50_response_time_ms",
    "p95_response_time_ms", "p99_response_time_ms", "uptime_seconds", "downtime_seconds", "uptime_percentage",
    "bids", "contracts_won", "contracts_completed", "contracts_failed", "revenue", "avg_bid_price",
    "validation_score", "reputation_score",
]
ROW_FIELDS = ["period_end", "computed_at"]


class PassSummary(ResponseContract):
    """What a computation pass did: the periods computed and the rows upserted."""

    periods: int = 0
    users: int = 0
    agents: int = 0
    platform_rows: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.periods} periods, {self.users} user rows, {self.agents} agent rows, "
                f"{self.platform_rows} platform rows in {self.seconds:.2f}s")

    def add(self, other: PassSummary) -> None:
        self.periods += other.periods
        self.users += other.users
        self.agents += other.agents
        self.platform_rows += other.platform_rows


class TrackSummary(PassSummary):
    """The periods of one type overlapping [start, end), computed."""

    period_type: PeriodTypeName
    start: datetime
    end: datetime


class TrackRangeError(ValueError):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def _heartbeat_timeout() -> timedelta:
    return timedelta(seconds=settings.ANALYTICS_AGENT_HEARTBEAT_TIMEOUT_SECONDS)


def _sum(field: str, event_type: str) -> Sum:
    return Sum(field, filter=Q(type=event_type), default=0.0)


def _count(event_type: str, condition: Q | None = None) -> Count:
    return Count("id", filter=Q(type=event_type) & (condition or Q()))


# --- Ranges ------------------------------------------------------------------------------------------


def resolve_range(period_type: str, start: datetime | None = None, end: datetime | None = None, *,
                  now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) to compute: the current period by default; ``start`` alone runs to the end of the current
    period. Raises TrackRangeError naming the bad field (end before start, more than MAX_PERIODS periods)."""
    if period_type not in PeriodType.values:
        raise TrackRangeError("period_type", f"Must be one of: {', '.join(PeriodType.values)}.")
    now = now or timezone.now()
    current = period_start(now, period_type)
    if start is None and end is not None:
        raise TrackRangeError("start", "Is required with end.")
    start = start or current
    end = end or period_end(current, period_type)
    if start >= end:
        raise TrackRangeError("end", "Must be after start.")
    too_many = TrackRangeError("start", f"At most {MAX_PERIODS} {period_type} periods from start to end.")
    if end - start > MAX_PERIODS * LONGEST[PeriodType(period_type)]:
        raise too_many
    # Events are kept for the retention period and none are in the future: outside, there is nothing to compute.
    if end > period_end(current, period_type):
        raise TrackRangeError("end", "Is after the end of the current period.")
    days = settings.ANALYTICS_DB_RETENTION_DAYS
    if start < period_start(now - timedelta(days=days), period_type):
        raise TrackRangeError("start", f"Is older than the retention period ({days} days).")
    if len(periods_between(start, end, period_type)) > MAX_PERIODS:
        raise too_many
    return start, end


# --- The passes --------------------------------------------------------------------------------------


def orgs_with_activity():
    return Organization.objects.filter(Exists(ActivityEvent.objects.filter(org=OuterRef("pk")))).order_by("pk")


def compute_periods(period_type: str, start: datetime, end: datetime, *, org: Organization | None = None,
                    now: datetime | None = None) -> TrackSummary:
    """Compute and upsert the rows of every period of ``period_type`` overlapping [start, end), for every org
    with activity (or the one ``org``)."""
    started = time.monotonic()
    now = now or timezone.now()
    summary = TrackSummary(period_type=period_type, start=start, end=end)  # type: ignore[arg-type]
    orgs = [org] if org is not None else list(orgs_with_activity())
    for organization in orgs:
        for first in periods_between(start, end, period_type):
            summary.add(compute_period(organization, period_type, first, now=now))
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def compute_dirty(now: datetime | None = None) -> PassSummary:
    """Compute every period marked dirty, then clear the marks read (a mark made during the pass survives)."""
    return _compute_marked(now or timezone.now())


def track_due(now: datetime | None = None) -> PassSummary:
    """The scheduled job: the dirty periods, and the current hour and day of every org with activity (their
    figures that count up to now — uptime, throughput — move on without new events)."""
    now = now or timezone.now()
    current = [(organization, period_type, period_start(now, period_type))
               for organization in orgs_with_activity() for period_type in (PeriodType.HOUR, PeriodType.DAY)]
    return _compute_marked(now, also=current)


def _compute_marked(now: datetime, *, also: Iterable[tuple[Organization, str, datetime]] = ()) -> PassSummary:
    started = time.monotonic()
    read_at = timezone.now()
    marks = list(ActivityDirtyPeriod.objects.filter(marked_at__lte=read_at).select_related("org"))
    periods = {(mark.org_id, mark.period_type, mark.period_start): mark.org for mark in marks}
    periods.update({(organization.pk, period_type, first): organization for organization, period_type, first in also})
    summary = PassSummary()
    for (_, period_type, first), organization in sorted(periods.items(), key=lambda item: item[0]):
        summary.add(compute_period(organization, period_type, first, now=now))
    _clear(marks)
    summary.seconds = round(time.monotonic() - started, 3)
    logger.info("track_analytics: %d periods (%d marked dirty), %d user rows, %d agent rows, %d platform rows "
                "in %.2fs", summary.periods, len(marks), summary.users, summary.agents, summary.platform_rows,
                summary.seconds)
    return summary


def _clear(marks: list[ActivityDirtyPeriod]) -> None:
    """Delete the marks read, each only if it was not marked again since (its marked_at moved on): a late
    event stored during the pass, committed after it read the marks, keeps its period marked."""
    by_moment: dict[datetime, list[int]] = defaultdict(list)
    for mark in marks:
        by_moment[mark.marked_at].append(mark.pk)
    for marked_at, ids in by_moment.items():
        ActivityDirtyPeriod.objects.filter(pk__in=ids, marked_at=marked_at).delete()


@transaction.atomic
def compute_period(org: Organization, period_type: str, first: datetime, *, now: datetime) -> PassSummary:
    """Upsert the rows of one period of one org (``first`` is the period's start)."""
    period = Period(org, period_type, first, period_end(first, period_type), now)
    computed_at = timezone.now()
    users = _user_rows(period, computed_at)
    agents = _agent_rows(period, computed_at)
    figures = platform_figures(org, period.start, period.end, previous_start=previous_period(first, period_type),
                               now=now)
    platform = PlatformMetrics(org=org, period_type=period_type, period_start=first, period_end=period.end,
                               computed_at=computed_at, **figures)
    _upsert(UserAnalytics, users, ["org", "user_id", "period_type", "period_start"], USER_FIGURES)
    _upsert(AgentAnalytics, agents, ["org", "agent_id", "period_type", "period_start"], AGENT_FIGURES)
    _upsert(PlatformMetrics, [platform], ["org", "period_type", "period_start"], PLATFORM_FIGURES)
    return PassSummary(periods=1, users=len(users), agents=len(agents), platform_rows=1)


def _upsert(model, rows: list, unique_fields: list[str], figures: list[str]) -> None:
    if rows:
        model.objects.bulk_create(rows, update_conflicts=True, unique_fields=unique_fields,
                                  update_fields=[*figures, *ROW_FIELDS])


@dataclass(frozen=True)
class Period:
    org: Organization
    type: str
    start: datetime
    end: datetime
    now: datetime

    @property
    def counted_until(self) -> datetime:
        """The current period counts up to now."""
        return min(self.end, self.now)

    def events(self):
        return ActivityEvent.objects.filter(org=self.org, timestamp__gte=self.start, timestamp__lt=self.end)

    def row_fields(self, computed_at: datetime) -> dict:
        return {"org": self.org, "period_type": self.type, "period_start": self.start, "period_end": self.end,
                "computed_at": computed_at}


# --- Users -------------------------------------------------------------------------------------------


def _user_rows(period: Period, computed_at: datetime) -> list[UserAnalytics]:
    events = period.events().exclude(user_id="")
    agents_of_user: dict[str, list[str]] = defaultdict(list)
    pairs = (events.filter(type__in=[EventType.AGENT_CALL, EventType.CREDITS_SPENT]).exclude(agent_id="")
             .values_list("user_id", "agent_id").distinct().order_by("user_id", "agent_id"))
    for user_id, agent_id in pairs:
        agents_of_user[user_id].append(agent_id)
    figures = events.values("user_id").order_by("user_id").annotate(
        sessions=_count(EventType.SESSION),
        page_views=_count(EventType.PAGE_VIEW),
        actions=_count(EventType.ACTION),
        active_seconds=_sum("value", EventType.SESSION),
        contracts_created=_count(EventType.CONTRACT_CREATED),
        contracts_completed=_count(EventType.CONTRACT_COMPLETED),
        contracts_cancelled=_count(EventType.CONTRACT_CANCELLED),
        credits_purchased=_sum("value", EventType.CREDITS_PURCHASED),
        credits_spent=_sum("value", EventType.CREDITS_SPENT),
        total_spent=_sum("value", EventType.PAYMENT),
        orchestrations_run=_count(EventType.ORCHESTRATION),
    )
    rows = []
    for row in figures:
        agent_ids = sorted(agents_of_user.get(row["user_id"], []))
        rows.append(UserAnalytics(**period.row_fields(computed_at), **row, agents_used=len(agent_ids),
                                  agent_ids=agent_ids))
    return rows


# --- Agents ------------------------------------------------------------------------------------------


def _agent_rows(period: Period, computed_at: datetime) -> list[AgentAnalytics]:
    timeout = _heartbeat_timeout()
    named = period.events().exclude(agent_id="")
    figures = {row["agent_id"]: row for row in named.values("agent_id")
               .order_by("agent_id").annotate(
        calls=_count(EventType.AGENT_CALL),
        successful_calls=_count(EventType.AGENT_CALL, Q(success=True)),
        avg_response_time_ms=Avg("value", filter=Q(type=EventType.AGENT_CALL)),
        bids=_count(EventType.BID),
        contracts_won=_count(EventType.CONTRACT_WON),
        contracts_completed=_count(EventType.CONTRACT_COMPLETED),
        contracts_failed=_count(EventType.CONTRACT_FAILED),
        revenue=_sum("value", EventType.PAYMENT),
        avg_bid_price=Avg("value", filter=Q(type=EventType.BID)),
        validation_score=Avg("value", filter=Q(type=EventType.VALIDATION_SCORE)),
    )}
    # Agents with heartbeats before the ones fetched went silent (downtime until their next one); the others
    # had not started yet (time not counted). The period's agents as a list: as a subquery of the period's
    # events, PostgreSQL joined the two reads by hash, which took a second while the statistics were stale.
    earlier = ActivityEvent.objects.filter(org=period.org, type=EventType.AGENT_HEARTBEAT,
                                           timestamp__lt=period.start - timeout)
    agents = sorted(figures)
    silent_before = {agent_id for start in range(0, len(agents), AGENTS_PER_QUERY)
                     for agent_id in earlier.filter(agent_id__in=agents[start:start + AGENTS_PER_QUERY])
                     .values_list("agent_id", flat=True).distinct().order_by()}
    response_times = _response_time_percentiles(period)
    reputation = dict(period.events().filter(type=EventType.REPUTATION_SCORE)
                      .order_by("agent_id", "timestamp", "id").values_list("agent_id", "value"))
    heartbeats = _heartbeats(period, timeout)
    rows = []
    for agent_id in sorted(figures.keys() | heartbeats.keys()):
        row = figures.get(agent_id, {})
        calls, successful = row.get("calls", 0), row.get("successful_calls", 0)
        p50, p95, p99 = response_times.get(agent_id, (None, None, None))
        uptime, downtime = availability(heartbeats.get(agent_id, []), period.start, period.counted_until, timeout,
                                        silent_before=agent_id in silent_before)
        rows.append(AgentAnalytics(
            **period.row_fields(computed_at), agent_id=agent_id, calls=calls, successful_calls=successful,
            failed_calls=calls - successful, success_rate=successful / calls if calls else None,
            avg_response_time_ms=row.get("avg_response_time_ms"),
            p50_response_time_ms=p50, p95_response_time_ms=p95, p99_response_time_ms=p99,
            uptime_seconds=uptime, downtime_seconds=downtime,
            uptime_percentage=100.0 * uptime / (uptime + downtime) if uptime + downtime > 0 else None,
            bids=row.get("bids", 0), contracts_won=row.get("contracts_won", 0),
            contracts_completed=row.get("contracts_completed", 0), contracts_failed=row.get("contracts_failed", 0),
            revenue=row.get("revenue", 0.0), avg_bid_price=row.get("avg_bid_price"),
            validation_score=row.get("validation_score"), reputation_score=reputation.get(agent_id),
        ))
    return rows


def _response_time_percentiles(period: Period) -> dict[str, tuple[float, float, float]]:
    """{agent: (p50, p95, p99)} from one fetch of every call's response time, ordered by agent and value."""
    calls = list(period.events().filter(type=EventType.AGENT_CALL, value__isnull=False)
                 .order_by("agent_id", "value").values_list("agent_id", "value"))
    if not calls:
        return {}
    agents = [agent_id for agent_id, _ in calls]
    values = np.fromiter((value for _, value in calls), dtype=np.float64, count=len(calls))
    starts = np.array([index for index, agent_id in enumerate(agents) if index == 0 or agents[index - 1] != agent_id],
                      dtype=np.int64)
    answers = percentiles_of_sorted_groups(values, starts, RESPONSE_TIME_FRACTIONS)
    return {agents[first]: tuple(float(answer[group]) for answer in answers)  # type: ignore[misc]
            for group, first in enumerate(starts)}


def _heartbeats(period: Period, timeout: timedelta) -> dict[str, list[tuple[datetime, bool]]]:
    """Each agent's heartbeats from one timeout before the period (the state carried in) to where it counts."""
    rows = (ActivityEvent.objects.filter(org=period.org, type=EventType.AGENT_HEARTBEAT,
                                         timestamp__gte=period.start - timeout, timestamp__lt=period.counted_until)
            .order_by("agent_id", "timestamp", "id").values_list("agent_id", "timestamp", "success"))
    heartbeats: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for agent_id, moment, available in rows:
        heartbeats[agent_id].append((moment, bool(available)))
    return heartbeats


def availability(heartbeats: list[tuple[datetime, bool]], start: datetime, end: datetime, timeout: timedelta, *,
                 silent_before: bool = False) -> tuple[float, float]:
    """(uptime, downtime) in seconds over [start, end).

    A heartbeat's state holds until the next heartbeat, for at most ``timeout``; the rest of a longer gap, and
    the time after the last heartbeat once the timeout has passed, is downtime. ``heartbeats`` are in time
    order and start at most one timeout before ``start``; ``silent_before``: the agent had heartbeats before
    those (so the time up to the first one is downtime, not uncounted).
    """
    up = down = 0.0

    def overlap(low: datetime, high: datetime) -> float:
        return max(0.0, (min(high, end) - max(low, start)).total_seconds())

    if silent_before:
        down += overlap(start, heartbeats[0][0] if heartbeats else end)
    for index, (moment, available) in enumerate(heartbeats):
        following = heartbeats[index + 1][0] if index + 1 < len(heartbeats) else end
        held_until = min(moment + timeout, following)
        if available:
            up += overlap(moment, held_until)
        else:
            down += overlap(moment, held_until)
        down += overlap(held_until, following)
    return up, down


# --- The platform ------------------------------------------------------------------------------------


def platform_figures(org: Organization, start: datetime, end: datetime, *, previous_start: datetime | None = None,
                     now: datetime | None = None) -> dict[str, float | int | None]:
    """The platform figures of one org over [start, end) (keys: PLATFORM_FIGURES).

    ``previous_start``: where the window compared for churn begins (it ends at ``start``); by default the
    window of the same length before. Figures that count time (throughput) count up to ``now``.
    """
    now = now or timezone.now()
    previous_start = previous_start or start - (end - start)
    events = ActivityEvent.objects.filter(org=org)
    in_window = events.filter(timestamp__gte=start, timestamp__lt=end)
    totals = in_window.aggregate(
        contracts_total=Count("contract_id", distinct=True, filter=Q(type=EventType.CONTRACT_CREATED)),
        contracts_completed=Count("contract_id", distinct=True, filter=Q(type=EventType.CONTRACT_COMPLETED)),
        contracts_failed=Count("contract_id", distinct=True, filter=Q(type=EventType.CONTRACT_FAILED)),
        revenue=_sum("value", EventType.PAYMENT),
        platform_fees=_sum("fee", EventType.PAYMENT),
        credits_purchased=_sum("value", EventType.CREDITS_PURCHASED),
        credits_spent=_sum("value", EventType.CREDITS_SPENT),
        calls=_count(EventType.AGENT_CALL),
        failed_calls=_count(EventType.AGENT_CALL, Q(success=False)),
        avg_response_time_ms=Avg("value", filter=Q(type=EventType.AGENT_CALL)),
        orchestrations=_count(EventType.ORCHESTRATION),
        fraud_alerts=_count(EventType.FRAUD_ALERT),
        security_events=_count(EventType.SECURITY_EVENT),
    )
    calls, failed = totals.pop("calls"), totals.pop("failed_calls")
    response_times = in_window.filter(type=EventType.AGENT_CALL, value__isnull=False).values_list("value", flat=True)
    elapsed_minutes = (min(end, now) - start).total_seconds() / 60
    users = _entities(events, "user_id", EventType.SIGNUP, start, end, previous_start)
    agents = _entities(events, "agent_id", EventType.AGENT_REGISTERED, start, end, previous_start)
    return {
        "users_total": users.total, "users_active": users.active, "users_new": users.new,
        "users_churned": users.churned,
        "agents_total": agents.total, "agents_active": agents.active, "agents_new": agents.new,
        "contracts_active": _contracts_open_at(events, end),
        **totals,
        "p95_response_time_ms": percentiles(list(response_times), [0.95])[0],
        "error_rate": failed / calls if calls else None,
        "throughput_per_minute": calls / elapsed_minutes if elapsed_minutes > 0 else 0.0,
        "api_calls": _api_calls(org, start, end),
    }


@dataclass(frozen=True)
class EntityCounts:
    total: int
    active: int
    new: int
    churned: int


def _entities(events, field: str, joined_type: str, start: datetime, end: datetime,
              previous_start: datetime) -> EntityCounts:
    """Users (``user_id``, joined by a signup) or agents (``agent_id``, joined by agent_registered): seen up
    to the end; active in the window; new (joined in it, or first seen in it); churned (active in the
    previous window, not in this one)."""
    named = events.exclude(**{field: ""})
    in_window = named.filter(timestamp__gte=start, timestamp__lt=end)
    active = set(in_window.values_list(field, flat=True).distinct().order_by())
    joined = set(in_window.filter(type=joined_type).values_list(field, flat=True).distinct().order_by())
    # One grouped pass over the (org, field, timestamp) index: each entity's first event up to the end.
    first_seen = named.filter(timestamp__lt=end).values(field).order_by().annotate(first=Min("timestamp"))
    first_seen_in_window = set(first_seen.filter(first__gte=start).values_list(field, flat=True))
    previous = set(named.filter(timestamp__gte=previous_start, timestamp__lt=start)
                   .values_list(field, flat=True).distinct().order_by())
    return EntityCounts(
        total=first_seen.count(),
        active=len(active),
        new=len(joined | first_seen_in_window),
        churned=len(previous - active),
    )


def _contracts_open_at(events, end: datetime) -> int:
    """Contracts created before ``end`` and not completed, cancelled or failed by then."""
    return (events.filter(timestamp__lt=end, type__in=[EventType.CONTRACT_CREATED, *CONTRACT_ENDS])
            .exclude(contract_id="").values("contract_id").order_by("contract_id")
            .annotate(created=_count(EventType.CONTRACT_CREATED),
                      ended=Count("id", filter=Q(type__in=CONTRACT_ENDS)))
            .filter(created__gt=0, ended=0).count())


def _api_calls(org: Organization, start: datetime, end: datetime) -> int:
    """Requests to the API by the org's tokens: the count of ``api.response_time`` in [start, end)."""
    window = Window(start, end - timedelta(microseconds=1))  # the query layer's windows include their end
    groups = metrics_query.grouped_statistics(RESPONSE_TIME_METRIC, window, [], org=org, with_percentiles=False)
    return sum(group.count for group in groups)

