"""Calendar periods of the activity analytics, in UTC: hour, day, ISO week (from Monday), calendar month.

    period_start(moment, period_type) -> datetime
    period_end(start, period_type) -> datetime
    periods_between(start, end, period_type) -> list[datetime]  (every period overlapping [start, end))
    enclosing_periods(moment) -> [(period_type, start)]        (the four periods a moment falls in)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from analytics.models.activity import PeriodType

PeriodTypeName = Literal["hour", "day", "week", "month"]  # the API's name for PeriodType's values
PERIOD_TYPES = [PeriodType.HOUR, PeriodType.DAY, PeriodType.WEEK, PeriodType.MONTH]


def period_start(moment: datetime, period_type: str) -> datetime:
    moment = moment.astimezone(UTC)
    if period_type == PeriodType.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period_type == PeriodType.DAY:
        return day
    if period_type == PeriodType.WEEK:
        return day - timedelta(days=day.weekday())
    if period_type == PeriodType.MONTH:
        return day.replace(day=1)
    raise ValueError(f"unknown period type {period_type!r}")


def period_end(start: datetime, period_type: str) -> datetime:
    if period_type == PeriodType.HOUR:
        return start + timedelta(hours=1)
    if period_type == PeriodType.DAY:
        return start + timedelta(days=1)
    if period_type == PeriodType.WEEK:
        return start + timedelta(weeks=1)
    if period_type == PeriodType.MONTH:
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(
            month=start.month + 1)
    raise ValueError(f"unknown period type {period_type!r}")


def periods_between(start: datetime, end: datetime, period_type: str) -> list[datetime]:
    starts = []
    current = period_start(start, period_type)
    while current < end:
        starts.append(current)
        current = period_end(current, period_type)
    return starts


def previous_period(start: datetime, period_type: str) -> datetime:
    return period_start(start - timedelta(microseconds=1), period_type)


def enclosing_periods(moment: datetime) -> list[tuple[str, datetime]]:
    return [(period_type, period_start(moment, period_type)) for period_type in PERIOD_TYPES]
