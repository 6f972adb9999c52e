"""Time windows shared by every read (API.md, Conventions: Windows).

A window is ``hours=N`` or ``days=N`` (rolling, ending now), or ``start``/``end``.
Mixing the forms is an error. Naive times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

MAX_WINDOW = timedelta(days=3660)
# The shortest rolling window, in hours or days: anything shorter rounds to an empty window.
MIN_ROLLING = 0.001


class WindowError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def isoformat(moment: datetime | None) -> str | None:
    """UTC with a ``Z``, as every response writes times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(field: str, value) -> datetime:
    moment: datetime | None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)  # fast path; Django's parser takes the rest
        except ValueError:
            try:
                moment = parse_datetime(text)
            except ValueError:
                moment = None
        if moment is None:
            raise WindowError(field, f"{text!r} is not an ISO-8601 date-time.")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _positive_number(field: str, value, limit: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WindowError(field, f"{value!r} is not a number.") from None
    if not (MIN_ROLLING <= number <= limit):
        raise WindowError(field, f"must be from {MIN_ROLLING:g} to {limit:g}.")
    return number


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def as_dict(self) -> dict:
        return {"start": isoformat(self.start), "end": isoformat(self.end)}

    @classmethod
    def resolve(cls, *, hours=None, days=None, start=None, end=None, default=timedelta(hours=24), now=None) -> Window:
        now = now or timezone.now()
        given = [name for name, value in (("hours", hours), ("days", days)) if value not in (None, "")]
        absolute = [name for name, value in (("start", start), ("end", end)) if value not in (None, "")]
        if len(given) > 1 or (given and absolute):
            field = given[-1] if len(given) > 1 else given[0]
            raise WindowError(field, "use one window form: hours, days, or start and end.")
        if given == ["hours"]:
            return cls(now - timedelta(hours=_positive_number("hours", hours, MAX_WINDOW.days * 24)), now)
        if given == ["days"]:
            return cls(now - timedelta(days=_positive_number("days", days, MAX_WINDOW.days)), now)
        if absolute:
            if start in (None, ""):
                raise WindowError("start", "is required when end is given.")
            start_at = parse_time("start", start)
            end_at = parse_time("end", end) if end not in (None, "") else now
            if end_at <= start_at:
                raise WindowError("end", "must be after start.")
            if end_at - start_at > MAX_WINDOW:
                raise WindowError("start", f"the window may span at most {MAX_WINDOW.days} days.")
            return cls(start_at, end_at)
        return cls(now - default, now)
