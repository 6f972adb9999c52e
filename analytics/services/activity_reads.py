"""Reading the per-period activity analytics (seed 003): one stored period of a user or an agent, and the
trend of one figure of a user, an agent or the platform over the last N periods.

    user_period(org, user_id, period_type, at=None) -> UserPeriod | None
    agent_period(org, agent_id, period_type, at=None) -> AgentPeriod | None
    user_trend(org, user_id, period_type, metric, periods) -> UserTrend | None
    agent_trend(org, agent_id, period_type, metric, periods) -> AgentTrend | None
    platform_trend(org, period_type, metric, periods) -> PlatformTrend

Everything is read from the rows that ``analytics.services.activity_periods`` stores; nothing is computed
from raw events here. A trend's points are the last N periods ending with the current one; a period without a
stored row is 0 for a count or an amount and null for a rate, an average or a score (which such a period does
not have). ``total`` sums the points of counts and amounts and averages the non-null points of the other
figures (``total_is`` says which); ``change_percent`` compares it with the same over the N periods before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from django.db import models
from django.utils import timezone
from pydantic import Field

from analytics.models import AgentAnalytics, Organization, PlatformMetrics, UserAnalytics
from analytics.platform.contracts import ResponseContract
from analytics.services.periods import PeriodTypeName, period_start, previous_period

TotalKind = Literal["sum", "mean"]

UserMetric = Literal[
    "sessions", "page_views", "actions", "active_seconds", "contracts_created", "contracts_completed",
    "contracts_cancelled", "credits_purchased", "credits_spent", "total_spent", "agents_used", "orchestrations_run",
]
AgentMetric = Literal[
    "calls", "successful_calls", "failed_calls", "success_rate", "avg_response_time_ms", "p50_response_time_ms",
    "p95_response_time_ms", "p99_response_time_ms", "uptime_seconds", "downtime_seconds", "uptime_percentage",
    "bids", "contracts_won", "contracts_completed", "contracts_failed", "revenue", "avg_bid_price",
    "validation_score", "reputation_score",
]
PlatformMetric = Literal[
    "users_total", "users_active", "users_new", "users_churned", "agents_total", "agents_active", "agents_new",
    "contracts_total", "contracts_active", "contracts_completed", "contracts_failed", "revenue", "platform_fees",
    "credits_purchased", "credits_spent", "avg_response_time_ms", "p95_response_time_ms", "error_rate",
    "throughput_per_minute", "api_calls", "orchestrations", "fraud_alerts", "security_events",
]
# The figures whose periods do not add up (distinct counts, levels, rates, averages, scores): a trend's total
# is their mean. Every other figure is a count or an amount, and its total is the sum.
MEAN_METRICS: dict[type[models.Model], set[str]] = {
    UserAnalytics: {"agents_used"},
    AgentAnalytics: {"success_rate", "avg_response_time_ms", "p50_response_time_ms", "p95_response_time_ms",
                     "p99_response_time_ms", "uptime_percentage", "avg_bid_price", "validation_score",
                     "reputation_score"},
    PlatformMetrics: {"users_total", "users_active", "agents_total", "agents_active", "contracts_active",
                      "avg_response_time_ms", "p95_response_time_ms", "error_rate", "throughput_per_minute"},
}
MAX_TREND_PERIODS = 366
POINTS_DESCRIPTION = ("The last `periods` periods, oldest first, ending with the current one. A period without "
                      "a stored row is 0 for a count or an amount, null for a rate, an average or a score.")


class PeriodFigures(ResponseContract):
    period_type: PeriodTypeName
    period_start: datetime
    period_end: datetime


class UserPeriod(PeriodFigures):
    """One stored period of a user (seed 003, "Get User Analytics")."""

    user_id: str
    sessions: int
    page_views: int
    actions: int
    active_seconds: float
    contracts_created: int
    contracts_completed: int
    contracts_cancelled: int
    credits_purchased: float
    credits_spent: float
    total_spent: float = Field(description="Payments made by the user.")
    agents_used: int = Field(description="Distinct agents the user called.")
    orchestrations_run: int


class AgentPeriod(PeriodFigures):
    """One stored period of an agent."""

    agent_id: str
    calls: int
    successful_calls: int
    failed_calls: int
    success_rate: float | None = Field(description="0-1; null without calls.")
    avg_response_time_ms: float | None
    p50_response_time_ms: float | None
    p95_response_time_ms: float | None
    p99_response_time_ms: float | None
    uptime_seconds: float
    downtime_seconds: float
    uptime_percentage: float | None = Field(description="Null without heartbeats.")
    bids: int
    contracts_won: int
    contracts_completed: int
    contracts_failed: int
    revenue: float
    avg_bid_price: float | None
    validation_score: float | None = Field(description="The period's average, 0-100.")
    reputation_score: float | None = Field(description="The period's last, 0-100.")


class PeriodPoint(ResponseContract):
    period_start: datetime
    value: int | float | None


class Trend(ResponseContract):
    period_type: PeriodTypeName
    total_is: TotalKind = Field(description="How `total` sums up the points: `sum` for counts and amounts, "
                                             "`mean` of the non-null points for the other figures.")
    points: list[PeriodPoint] = Field(description=POINTS_DESCRIPTION)
    total: int | float | None = Field(description="The points' sum or mean (`total_is`); null when every "
                                                  "point is.")
    previous_total: int | float | None = Field(description="The same over the `periods` periods before.")
    change_percent: float | None = Field(description="(total - previous_total) / previous_total × 100; null "
                                                     "when previous_total is 0 or null.")


class UserTrend(Trend):
    user_id: str
    metric: UserMetric


class AgentTrend(Trend):
    agent_id: str
    metric: AgentMetric


class PlatformTrend(Trend):
    metric: PlatformMetric


def _numeric_fields(model: type[models.Model]) -> set[str]:
    return {field.name for field in model._meta.get_fields()
            if isinstance(field, models.IntegerField | models.FloatField)}


assert all(set(get_args(metrics)) <= _numeric_fields(model) for model, metrics in (
    (UserAnalytics, UserMetric), (AgentAnalytics, AgentMetric), (PlatformMetrics, PlatformMetric))), \
    "every trend metric is a numeric field of its table"


# --- One period --------------------------------------------------------------------------------------


def _one_period(rows: models.QuerySet, period_type: str, at: datetime | None):
    rows = rows.filter(period_type=period_type)
    if at is not None:
        return rows.filter(period_start=period_start(at, period_type)).first()
    return rows.order_by("-period_start").first()


def user_period(org: Organization, user_id: str, period_type: str, at: datetime | None = None) -> UserPeriod | None:
    """The user's most recent stored period of this type, or the one containing ``at``; None if not stored."""
    row = _one_period(UserAnalytics.objects.filter(org=org, user_id=user_id), period_type, at)
    return None if row is None else UserPeriod.model_validate(row)


def agent_period(org: Organization, agent_id: str, period_type: str,
                 at: datetime | None = None) -> AgentPeriod | None:
    row = _one_period(AgentAnalytics.objects.filter(org=org, agent_id=agent_id), period_type, at)
    return None if row is None else AgentPeriod.model_validate(row)


# --- Trends ------------------------------------------------------------------------------------------


def last_periods(period_type: str, count: int, now: datetime) -> list[datetime]:
    """The starts of the ``count`` periods ending with the one containing ``now``, oldest first."""
    starts = [period_start(now, period_type)]
    while len(starts) < count:
        starts.append(previous_period(starts[-1], period_type))
    return starts[::-1]


def _total(values: list, kind: TotalKind) -> int | float | None:
    present = [value for value in values if value is not None]
    if kind == "sum":
        return sum(present)
    return sum(present) / len(present) if present else None


def _trend_fields(rows: models.QuerySet, period_type: str, metric: str, periods: int,
                  now: datetime | None) -> dict:
    model = rows.model
    starts = last_periods(period_type, 2 * periods, now or timezone.now())
    stored = dict(rows.filter(period_type=period_type, period_start__gte=starts[0], period_start__lte=starts[-1])
                  .values_list("period_start", metric))
    missing = None if model._meta.get_field(metric).null else 0
    values = [stored.get(start, missing) for start in starts]
    kind: TotalKind = "mean" if metric in MEAN_METRICS[model] else "sum"
    previous_total = _total(values[:periods], kind)
    total = _total(values[periods:], kind)
    change = None if not previous_total or total is None else (total - previous_total) / previous_total * 100
    return {
        "period_type": period_type, "metric": metric, "total_is": kind,
        "points": [PeriodPoint(period_start=start, value=value)
                   for start, value in zip(starts[periods:], values[periods:], strict=True)],
        "total": total, "previous_total": previous_total, "change_percent": change,
    }


def user_trend(org: Organization, user_id: str, period_type: str, metric: str, periods: int,
               now: datetime | None = None) -> UserTrend | None:
    """None when the user has no stored period of any type in the org."""
    rows = UserAnalytics.objects.filter(org=org, user_id=user_id)
    if not rows.exists():
        return None
    return UserTrend(user_id=user_id, **_trend_fields(rows, period_type, metric, periods, now))


def agent_trend(org: Organization, agent_id: str, period_type: str, metric: str, periods: int,
                now: datetime | None = None) -> AgentTrend | None:
    """None when the agent has no stored period of any type in the org."""
    rows = AgentAnalytics.objects.filter(org=org, agent_id=agent_id)
    if not rows.exists():
        return None
    return AgentTrend(agent_id=agent_id, **_trend_fields(rows, period_type, metric, periods, now))


def platform_trend(org: Organization, period_type: str, metric: str, periods: int,
                   now: datetime | None = None) -> PlatformTrend:
    return PlatformTrend(**_trend_fields(PlatformMetrics.objects.filter(org=org), period_type, metric, periods, now))

