"""The analytics dashboard of seed 003: an org's platform figures over a window, its daily trend, the API
performance of its requests and the health of the services.

    dashboard(org, window, now=None) -> Dashboard
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from pydantic import Field

from analytics.models import Organization, PeriodType, PlatformMetrics
from analytics.platform.contracts import ResponseContract
from analytics.platform.windows import Window
from analytics.services.activity_periods import platform_figures
from analytics.services.performance import Performance, performance_summary
from analytics.services.periods import periods_between
from monitoring.services.health import HealthSummary, health_summary


class UserFigures(ResponseContract):
    total: int = Field(description="Users seen up to the window's end.")
    active: int = Field(description="Users with any activity in the window.")
    new: int = Field(description="Users who signed up, or were first seen, in the window.")


class AgentFigures(ResponseContract):
    total: int = Field(description="Agents seen up to the window's end.")
    active: int = Field(description="Agents with any activity in the window.")
    new: int = Field(description="Agents registered, or first seen, in the window.")


class ContractFigures(ResponseContract):
    total: int = Field(description="Contracts created in the window.")
    active: int = Field(description="Contracts open at the window's end.")
    completed: int = Field(description="Contracts completed in the window.")


class FinancialFigures(ResponseContract):
    revenue: float = Field(description="Payments in the window.")
    platform_fees: float = Field(description="The platform's fees of those payments.")


class CurrentMetrics(ResponseContract):
    users: UserFigures
    agents: AgentFigures
    contracts: ContractFigures
    financial: FinancialFigures


class DashboardTrendPoint(ResponseContract):
    period_start: datetime
    users_active: int
    users_new: int
    agents_active: int
    contracts_total: int
    contracts_completed: int
    revenue: float
    platform_fees: float


TREND_FIGURES = [name for name in DashboardTrendPoint.model_fields if name != "period_start"]


class Dashboard(ResponseContract):
    current_metrics: CurrentMetrics = Field(description="The org's platform figures over the window "
                                                        "(docs/activity.md).")
    trends: list[DashboardTrendPoint] = Field(description="One point per UTC day overlapping the window, from the "
                                                          "stored day rows; a day not computed yet is all 0.")
    performance: Performance = Field(description="The API performance of the org's requests over the window.")
    monitoring: HealthSummary = Field(description="The current health of the services.")
    start: datetime
    end: datetime


def dashboard(org: Organization, window: Window, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    figures = platform_figures(org, window.start, window.end, now=now)
    current = CurrentMetrics(
        users=UserFigures(total=figures["users_total"], active=figures["users_active"], new=figures["users_new"]),
        agents=AgentFigures(total=figures["agents_total"], active=figures["agents_active"],
                            new=figures["agents_new"]),
        contracts=ContractFigures(total=figures["contracts_total"], active=figures["contracts_active"],
                                  completed=figures["contracts_completed"]),
        financial=FinancialFigures(revenue=figures["revenue"], platform_fees=figures["platform_fees"]),
    )
    return Dashboard(current_metrics=current, trends=daily_trend(org, window), start=window.start, end=window.end,
                     performance=performance_summary(window, org=org), monitoring=health_summary(now))


def daily_trend(org: Organization, window: Window) -> list[DashboardTrendPoint]:
    days = periods_between(window.start, window.end, PeriodType.DAY)
    stored = {row["period_start"]: row for row in PlatformMetrics.objects.filter(
        org=org, period_type=PeriodType.DAY, period_start__gte=days[0], period_start__lte=days[-1],
    ).values("period_start", *TREND_FIGURES)}
    not_computed = dict.fromkeys(TREND_FIGURES, 0)
    return [DashboardTrendPoint(**{**not_computed, **stored.get(day, {}), "period_start": day}) for day in days]
