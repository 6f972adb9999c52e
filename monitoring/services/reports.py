"""SLA reports and daily SLA summaries, read from the check history (and, past retention, the summaries).

A window is cut at UTC midnights. Each day comes from the raw history, or from its stored
``ServiceDailySLA`` row when the raw history is gone (before the retention cutoff) or when
the caller accepts summaries (``exact=False``, the admin's uptime columns). Days merge into
the window's and each month's figures; see ``monitoring.services.sla``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import Q
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


def raw_day_figures(service: Service, pieces: list[tuple[datetime, datetime]],
                    results: list[sla.Result] | None = None) -> list[Figures]:
    """Figures of adjacent pieces (in order) from the raw history, loaded once.

    ``results`` are the service's results when the caller loaded them already, in time order:
    any list holding at least those ``load_results`` would load gives the same figures.
    """
    if not pieces:
        return []
    start, end = pieces[0][0], pieces[-1][1]
    if results is None:
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


def _whole_closed_days(pieces: list[tuple[datetime, datetime]], now: datetime) -> list[date]:
    today = sla.day_start(now)
    return [start.date() for start, end in pieces if end - start == ONE_DAY and end <= today]


def _runs(pieces: list[tuple[datetime, datetime]], rollup_days: set[date]) -> list[tuple[bool, list]]:
    """Adjacent pieces in runs: (True, whole days read from their summaries) or (False, pieces read raw)."""
    return [(from_rollup, list(run)) for from_rollup, run in
            groupby(pieces, key=lambda piece: piece[0].date() in rollup_days and piece[1] - piece[0] == ONE_DAY)]


def _daily_figures(service: Service, pieces, stored: dict[date, ServiceDailySLA], rollup_days: set[date],
                   results: list[sla.Result] | None = None) -> list[Figures]:
    """Figures of each piece: from its stored summary for ``rollup_days``, else from the raw history
    (``results`` when the caller loaded them, else one query per run of raw pieces)."""
    daily: list[Figures] = []
    for from_rollup, run in _runs(pieces, rollup_days):
        if from_rollup:
            daily.extend(rollup_figures(stored[piece_start.date()]) for piece_start, _ in run)
        else:
            daily.extend(raw_day_figures(service, run, results))
    return daily


def service_sla(service: Service, start: datetime, end: datetime, now: datetime | None = None,
                exact: bool = True) -> SlaReport:
    now = now or timezone.now()
    days = sla.split_days(start, end)
    cutoff = retention_cutoff(now)
    stored = {row.day: row for row in
              ServiceDailySLA.objects.filter(service=service, day__in=_whole_closed_days(days, now))}
    rollup_days = {day for day in stored if not exact or _midnight(day) < cutoff}
    daily = _daily_figures(service, days, stored, rollup_days)
    monthly = [sla.merge(list(parts)) for _, parts in groupby(daily, key=lambda f: sla.month_start(f.start))]
    return SlaReport(service=service, overall=sla.merge(daily), daily=daily, monthly=monthly)


def _midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=sla.UTC)


def uptime_percentage(service: Service, period: timedelta, now: datetime | None = None) -> float | None:
    """Uptime over the last ``period``, from daily summaries where they exist (for the admin)."""
    return uptime_percentages([service], [period], now)[service.pk][0]


def uptime_percentages(services, periods: list[timedelta], now: datetime | None = None
                       ) -> dict[int, list[float | None]]:
    """{service pk: [uptime over the last period, for each of ``periods``]}, as ``uptime_percentage``
    gives it, in two queries for all the services: their daily summaries, then the raw results of
    the pieces that have none (the ragged first day, today, days not summarised yet)."""
    services = list(services)
    if not services or not periods:
        return {service.pk: [] for service in services}
    now = now or timezone.now()
    windows = [sla.split_days(now - period, now) for period in periods]
    stored: dict[int, dict[date, ServiceDailySLA]] = defaultdict(dict)
    longest = sla.split_days(now - max(periods), now)
    for row in ServiceDailySLA.objects.filter(service__in=services, day__in=_whole_closed_days(longest, now)):
        stored[row.service_id][row.day] = row

    raw_ranges = Q()
    for service in services:
        spans = sorted((run[0][0] - max_hold(service), run[-1][1]) for days in windows
                       for from_rollup, run in _runs(days, set(stored[service.pk])) if not from_rollup)
        for start, end in _joined(spans):
            raw_ranges |= Q(service=service, checked_at__gte=start, checked_at__lt=end)
    results: dict[int, list[sla.Result]] = defaultdict(list)
    if raw_ranges:
        rows = (HealthCheck.objects.filter(raw_ranges).order_by("checked_at")
                .values_list("service_id", "checked_at", "status", "response_time_ms", "consecutive_failures"))
        for service_id, at, status, response, failures in rows:
            results[service_id].append(sla.Result(at, status, response if failures == 0 else None))

    return {
        service.pk: [sla.merge(_daily_figures(service, days, stored[service.pk], set(stored[service.pk]),
                                              results[service.pk])).uptime_percentage for days in windows]
        for service in services
    }


def _joined(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted spans with the overlapping and touching ones joined."""
    joined: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


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
