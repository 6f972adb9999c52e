"""SLA reports and daily SLA summaries, read from the check history (and, past retention, the summaries).

A window is cut at UTC midnights. Each day comes from the raw history, or from its stored
``ServiceDailySLA`` row when the raw history is gone (before the retention cutoff) or when
the caller accepts summaries (``exact=False``, the admin's uptime columns). Days merge into
the window's and each month's figures; see ``monitoring.services.sla``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import Field

from analytics.platform.contracts import ResponseContract, Source
from monitoring.models import RESULT_HOLDS_INTERVALS, HealthCheck, Service, ServiceDailySLA
from monitoring.services import sla
from monitoring.services.sla import Figures

ONE_DAY = timedelta(days=1)


class SlaFigures(ResponseContract):
    """A period's SLA figures, rounded as they are shown."""

    start: datetime
    end: datetime
    uptime_percentage: float | None = Field(description="Null when no time has a known status.")
    sla_target: float
    compliant: bool | None
    error_budget_remaining_minutes: float
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None
    downtime_incidents: int
    downtime_minutes: float
    monitored_minutes: float = Field(description="Time with a known status.")
    unknown_minutes: float
    source: Source

    @classmethod
    def of(cls, figures: Figures, target: float) -> SlaFigures:
        return cls(
            start=figures.start,
            end=figures.end,
            uptime_percentage=_rounded(figures.uptime_percentage, 4),
            sla_target=target,
            compliant=figures.compliant(target),
            error_budget_remaining_minutes=round(figures.error_budget_remaining_minutes(target), 2),
            avg_response_time_ms=_rounded(figures.avg_response_time_ms, 3),
            p95_response_time_ms=_rounded(figures.p95_response_time_ms, 3),
            downtime_incidents=figures.downtime_incidents,
            downtime_minutes=round(figures.downtime_minutes, 2),
            monitored_minutes=round(figures.known_minutes, 2),
            unknown_minutes=round(figures.unknown_minutes, 2),
            source=figures.source,
        )


class SlaReportBody(SlaFigures):
    service_name: str
    daily: list[SlaFigures]
    monthly: list[SlaFigures]


@dataclass
class SlaReport:
    service: Service
    overall: Figures
    daily: list[Figures]
    monthly: list[Figures]

    def body(self) -> SlaReportBody:
        target = self.service.sla_target
        return SlaReportBody(
            service_name=self.service.name,
            **SlaFigures.of(self.overall, target).__dict__,
            daily=[SlaFigures.of(day, target) for day in self.daily],
            monthly=[SlaFigures.of(month, target) for month in self.monthly],
        )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def max_hold(service: Service) -> timedelta:
    return RESULT_HOLDS_INTERVALS * service.interval


def load_results(service: Service, start: datetime, end: datetime) -> list[sla.Result]:
    """The results that can hold any moment of [start, end)."""
    rows = (HealthCheck.objects.filter(service=service, checked_at__gte=start - max_hold(service), checked_at__lt=end)
            .order_by("checked_at")
            .values_list("checked_at", "status", "response_time_ms", "consecutive_failures"))
    return [sla.Result(at, status, response if failures == 0 else None) for at, status, response, failures in rows]


def raw_day_figures(service: Service, pieces: list[tuple[datetime, datetime]]) -> list[Figures]:
    """Figures of adjacent pieces (in order) from the raw history, loaded once."""
    if not pieces:
        return []
    start, end = pieces[0][0], pieces[-1][1]
    results = load_results(service, start, end)
    segments = sla.timeline(results, start, end, max_hold(service))
    return [sla.figures(segments, results, piece_start, piece_end) for piece_start, piece_end in pieces]


def rollup_figures(row: ServiceDailySLA) -> Figures:
    start = _midnight(row.day)
    return Figures(
        start=start, end=start + ONE_DAY,
        seconds={sla.HEALTHY: row.healthy_seconds, sla.DEGRADED: row.degraded_seconds,
                 sla.UNHEALTHY: row.unhealthy_seconds, sla.UNKNOWN: row.unknown_seconds},
        downtime_incidents=row.downtime_incidents, starts_unhealthy=row.starts_unhealthy,
        ends_unhealthy=row.ends_unhealthy, response_count=row.response_count,
        avg_response_time_ms=row.avg_response_time_ms, p95_response_time_ms=row.p95_response_time_ms,
        response_times=None, source="rollup",
    )


def retention_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)


def service_sla(service: Service, start: datetime, end: datetime, now: datetime | None = None,
                exact: bool = True) -> SlaReport:
    now = now or timezone.now()
    days = sla.split_days(start, end)
    today = sla.day_start(now)
    cutoff = retention_cutoff(now)
    whole_closed_days = [s.date() for s, e in days if e - s == ONE_DAY and e <= today]
    stored = {row.day: row for row in ServiceDailySLA.objects.filter(service=service, day__in=whole_closed_days)}
    use_rollup = {day for day, row in stored.items()
                  if not exact or _midnight(day) < cutoff}

    daily: list[Figures] = []
    # Raw pieces between rollup days are read in contiguous runs, each with one query.
    for from_rollup, run in groupby(days, key=lambda piece: piece[0].date() in use_rollup
                                    and piece[1] - piece[0] == ONE_DAY):
        run = list(run)
        if from_rollup:
            daily.extend(rollup_figures(stored[piece_start.date()]) for piece_start, _ in run)
        else:
            daily.extend(raw_day_figures(service, run))
    monthly = [sla.merge(list(parts)) for _, parts in groupby(daily, key=lambda f: sla.month_start(f.start))]
    return SlaReport(service=service, overall=sla.merge(daily), daily=daily, monthly=monthly)


def _midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=sla.UTC)


def uptime_percentage(service: Service, period: timedelta, now: datetime | None = None) -> float | None:
    """Uptime over the last ``period``, from daily summaries where they exist (for the admin)."""
    now = now or timezone.now()
    return service_sla(service, now - period, now, now=now, exact=False).overall.uptime_percentage


def roll_up_daily_sla(now: datetime | None = None, services=None) -> int:
    """Store the SLA figures of every closed UTC day that has history and no summary yet. Returns rows made."""
    now = now or timezone.now()
    today = sla.day_start(now)
    created = 0
    for service in services if services is not None else Service.objects.all():
        latest = service.daily_sla.order_by("-day").values_list("day", flat=True).first()
        if latest is not None:
            first_day = _midnight(latest) + ONE_DAY
        else:
            first_check = service.checks.order_by("checked_at").values_list("checked_at", flat=True).first()
            if first_check is None:
                continue
            first_day = sla.day_start(first_check)
        pieces = sla.split_days(first_day, today)
        if not pieces:
            continue
        rows = [
            ServiceDailySLA(
                service=service, day=figures.start.date(),
                healthy_seconds=figures.seconds[sla.HEALTHY], degraded_seconds=figures.seconds[sla.DEGRADED],
                unhealthy_seconds=figures.seconds[sla.UNHEALTHY], unknown_seconds=figures.seconds[sla.UNKNOWN],
                downtime_incidents=figures.downtime_incidents, starts_unhealthy=figures.starts_unhealthy,
                ends_unhealthy=figures.ends_unhealthy, response_count=figures.response_count,
                avg_response_time_ms=figures.avg_response_time_ms,
                p95_response_time_ms=figures.p95_response_time_ms,
                sla_target=service.sla_target, computed_at=now,
            )
            for figures in raw_day_figures(service, pieces)
        ]
        with transaction.atomic():
            made = ServiceDailySLA.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        created += len(made)
    return created
