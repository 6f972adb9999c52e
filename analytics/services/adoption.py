"""Adoption: skills per user, the org's adoption rate, weekly growth and engaged users (docs/leaderboards.md).

    adoption(window, *, org=ALL_ORGS) -> Adoption  (the body of GET skills/adoption)
    skill_adoption(skill_id, window) -> dict        (one skill's users and orgs, for its admin page)

Execution counts and "which skills were used" come from the metrics query layer.
Who used what — users × skills, the days a user was active — is per-user data the
metric series do not carry (``user_id`` is deliberately not a tag: it would make a
series per user). It is read with DISTINCT and GROUP BY in SQL from
``skill_usage_day`` (who used which skill on which UTC day) for the whole days of
a window and from ``skill_usage`` for the part days at its edges (``_usage``):
the per-user relation itself, not a second aggregation of the time series. A
window that no execution is later than (one ending now) reads who used which skill
from ``skill_user_last_use`` instead (``_recent_pairs``): one row per pair. Who was
active (active users, weekly growth, engagement) is read from ``skill_user_day``
for the whole days: one row per user and day, whatever the skills.
Executions without a ``user_id`` count as usage but belong to no user.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import TruncDate
from pydantic import Field

from analytics.models import (
    MetricSeries,
    Organization,
    Skill,
    SkillExecution,
    SkillUsageDay,
    SkillUserDay,
    SkillUserLastUse,
)
from analytics.models.skills import EXECUTIONS_METRIC
from analytics.platform.contracts import ResponseContract
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.leaderboards import absent_unless_given, weeks
from analytics.services.percentiles import percentile
from analytics.services.skills import execution_counts

DEFAULT_WINDOW = timedelta(days=30)
DAY = timedelta(days=1)
ENGAGED_MIN_DAYS = 3  # active on at least 3 ...
ENGAGED_OF_DAYS = 7  # ... of the last 7 UTC days (today included)


# --- The body of GET skills/adoption ------------------------------------------------------


class SkillsPerUser(ResponseContract):
    """How many distinct skills each active user used in the window, as a distribution."""

    users: int = Field(description="Users with executions in the window.")
    mean: float | None
    median: float | None
    max: int | None
    histogram: dict[str, int] = Field(description="{number of skills: number of users} (keys are numbers, "
                                                  "as JSON keys are strings).")


class Week(ResponseContract):
    start: datetime
    end: datetime
    executions: int
    active_users: int


class WeeklyGrowth(ResponseContract):
    """The 7 days ending at the window's end against the 7 before; growth is a fraction (null from zero)."""

    this_week: Week
    last_week: Week
    executions_growth: float | None
    active_users_growth: float | None


class OrgAdoption(ResponseContract):
    org: str = Field(description="The org's slug.")
    org_adoption_rate: float | None = Field(description="Share (0-1) of the non-deprecated catalogue used.")
    skills_used: int
    catalogue_size: int
    active_users: int


class Adoption(ResponseContract):
    """The body of ``GET skills/adoption``."""

    start: datetime
    end: datetime
    skills_per_user: SkillsPerUser
    org_adoption_rate: float | None = Field(description="Share (0-1) of the non-deprecated catalogue used.")
    skills_used: int
    catalogue_size: int
    weekly_growth: WeeklyGrowth
    engaged_users: int = Field(description=f"Users active on at least {ENGAGED_MIN_DAYS} of the last "
                                           f"{ENGAGED_OF_DAYS} UTC days.")
    active_users_last_7_days: int
    engagement_rate: float | None
    engagement_since: datetime = Field(description="The first of the 7 UTC days.")
    orgs: list[OrgAdoption] = absent_unless_given("Staff over all orgs only: each org's adoption rate.")


USAGE_COLUMNS = ["org_id", "user_id", "skill_id", "day"]
ACTIVITY_COLUMNS = ["org_id", "user_id", "day"]


def _usage(scope: Scope, window: Window, *, per_skill: bool = True) -> list[QuerySet]:
    """Who used which skill in ``window``, as parts to be united: skill_usage_day for its whole UTC days and
    skill_usage for the part days at its edges. Each part has org_id, user_id, skill_id and day. Without
    ``per_skill``, who was active on which day: skill_user_day for the whole days (one row per user and day),
    and parts with org_id, user_id and day.

    A part day is read from the day rows as well when none of its executions fall outside the window
    (the usual end of a window: now): the day's rows are then exactly the window's part of it.
    """
    columns = USAGE_COLUMNS if per_skill else ACTIVITY_COLUMNS
    first = _midnight(window.start, up=True)  # the whole days are [first, last)
    last = _midnight(window.end, up=False)
    if first >= last:
        return [_raw_usage(scope, window.start, window.end, columns)]
    whole_from, whole_to = first.date(), (last - DAY).date()
    parts = []
    if window.start < first:
        if _any_executions(scope, timestamp__gte=first - DAY, timestamp__lt=window.start):
            parts.append(_raw_usage(scope, window.start, first, columns, end_included=False))
        else:
            whole_from = (first - DAY).date()
    if _any_executions(scope, timestamp__gt=window.end, timestamp__lt=last + DAY):
        parts.append(_raw_usage(scope, last, window.end, columns))
    else:
        whole_to = last.date()
    model = SkillUsageDay if per_skill else SkillUserDay
    days = scope.filter(model.objects.filter(day__gte=whole_from, day__lte=whole_to))
    return [days.values(*columns), *parts]


def _pairs(scope: Scope, window: Window) -> list[QuerySet]:
    """Who used which skill in ``window``, as parts to be united, each with org_id, user_id and skill_id."""
    recent = _recent_pairs(scope, window)
    return recent if recent is not None else _usage(scope, window)


def _recent_pairs(scope: Scope, window: Window) -> list[QuerySet] | None:
    """The pairs of a window no execution is later than (one ending now), from skill_user_last_use: those
    last used on a whole day of the window, and from skill_usage those of the part day at its start. None
    for any other window.

    Exact: a pair last used on a day the window holds whole was used in the window (nothing is later than its
    end), and a pair used in the window was used on one of those days or in its first part day.
    """
    if _any_executions(scope, timestamp__gt=window.end):
        return None
    first = _midnight(window.start, up=True)
    parts = [scope.filter(SkillUserLastUse.objects.filter(last_day__gte=first.date()))
             .values("org_id", "user_id", "skill_id")]
    if window.start < first:
        parts.append(_raw_usage(scope, window.start, min(first, window.end), USAGE_COLUMNS,
                                end_included=first > window.end))
    return parts


def _any_executions(scope: Scope, **bounds) -> bool:
    return scope.filter(SkillExecution.objects.filter(user_id__isnull=False, **bounds)).exists()


def _raw_usage(scope: Scope, start: datetime, end: datetime, columns: list[str], *,
               end_included: bool = True) -> QuerySet:
    rows = scope.filter(SkillExecution.objects.filter(timestamp__gte=start, user_id__isnull=False))
    rows = rows.filter(timestamp__lte=end) if end_included else rows.filter(timestamp__lt=end)
    return rows.annotate(day=TruncDate("timestamp", tzinfo=UTC)).values(*columns)


def _midnight(moment: datetime, *, up: bool) -> datetime:
    """The UTC midnight at or after (``up``) or at or before ``moment``."""
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + DAY if up and midnight < moment else midnight


def _user(scope: Scope) -> list[str]:
    """A user: their user_id within one org; over all orgs, the (org, user_id) pair (ids are per org)."""
    return ["org_id", "user_id"] if scope.is_all else ["user_id"]


def _distinct_per(parts: list[QuerySet], per: list[str], distinct: list[str]) -> list[tuple]:
    """(*per, how many distinct ``distinct`` tuples) for each distinct ``per`` of the united ``parts``.

    As ``SELECT per, COUNT(DISTINCT x) ... GROUP BY per``, written as a count over the DISTINCT (per, x)
    rows of a UNION: PostgreSQL sorts each group for a COUNT(DISTINCT) but hashes a DISTINCT, and over a
    month of executions the sort was most of the adoption page's time.
    """
    selects: list[str] = []
    params: list = []
    for part in parts:
        sql, part_params = part.values(*per, *distinct).distinct().order_by().query.sql_with_params()
        selects.append(f"SELECT * FROM ({sql}) part")
        params.extend(part_params)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in per)
    selected = f"{columns}, COUNT(*)" if per else "COUNT(*)"
    grouping = f" GROUP BY {columns}" if per else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {selected} FROM ({' UNION '.join(selects)}) pairs{grouping}", params)
        return cursor.fetchall()


def _skills_per_user(scope: Scope, window: Window) -> list[tuple]:
    """(*user, distinct skills used) for each user active in the window (a user as ``_user`` has it)."""
    return _distinct_per(_pairs(scope, window), _user(scope), ["skill_id"])


def skills_per_user(window: Window, *, org: ScopeLike = ALL_ORGS) -> SkillsPerUser:
    """How many distinct skills each active user used in the window, as a distribution."""
    return _distribution(_skills_per_user(as_scope(org), window))


def _distribution(rows: list[tuple]) -> SkillsPerUser:
    counts = [row[-1] for row in rows]
    histogram = Counter(counts)
    return SkillsPerUser(
        users=len(counts),
        mean=sum(counts) / len(counts) if counts else None,
        median=percentile(counts, 0.5),  # API.md's percentile: linear interpolation between closest ranks
        max=max(counts) if counts else None,
        # Keys are numbers of skills (strings, as JSON keys are), values numbers of users.
        histogram={str(skills): histogram[skills] for skills in sorted(histogram)},
    )


def _active_users(scope: Scope, window: Window) -> int:
    return _distinct_per(_usage(scope, window, per_skill=False), [], _user(scope))[0][0]


def _catalogue() -> set[str]:
    return set(Skill.catalogue_ids())


def adoption_rate(window: Window, *, org: ScopeLike = ALL_ORGS, catalogue: set[str] | None = None) -> dict:
    """The share of the (non-deprecated) global catalogue that the org used in the window."""
    catalogue = _catalogue() if catalogue is None else catalogue
    used = {skill_id for skill_id, figures in execution_counts(window, org=org).items()
            if figures["execution_count"] > 0}
    used_in_catalogue = used & catalogue
    return {"org_adoption_rate": len(used_in_catalogue) / len(catalogue) if catalogue else None,
            "skills_used": len(used_in_catalogue), "catalogue_size": len(catalogue)}


def weekly_growth(end: datetime, *, org: ScopeLike = ALL_ORGS) -> WeeklyGrowth:
    """Executions (query layer) and active users, the 7 days ending at ``end`` against the 7 before."""
    org = as_scope(org)
    this_week, last_week = weeks(end)
    figures = {}
    for label, week in (("this_week", this_week), ("last_week", last_week)):
        executions = query.statistics(EXECUTIONS_METRIC, week, org=org).sum
        figures[label] = Week(start=week.start, end=week.end, executions=round(executions or 0),
                              active_users=_active_users(org, week))

    def growth(key):
        before = getattr(figures["last_week"], key)
        return (getattr(figures["this_week"], key) - before) / before if before else None

    return WeeklyGrowth(**figures, executions_growth=growth("executions"),
                        active_users_growth=growth("active_users"))


def engagement(end: datetime, *, org: ScopeLike = ALL_ORGS) -> dict:
    """Users active on at least 3 of the last 7 UTC calendar days ending with ``end``'s day."""
    org = as_scope(org)
    first_day = (end.astimezone(UTC) - timedelta(days=ENGAGED_OF_DAYS - 1)).replace(hour=0, minute=0, second=0,
                                                                                     microsecond=0)
    active_days = [row[-1] for row in _distinct_per(_usage(org, Window(first_day, end), per_skill=False),
                                                    _user(org), ["day"])]
    engaged = sum(1 for count in active_days if count >= ENGAGED_MIN_DAYS)
    return {"engaged_users": engaged, "active_users_last_7_days": len(active_days),
            "engagement_rate": engaged / len(active_days) if active_days else None,
            "engagement_since": first_day}


def adoption(window: Window, *, org: ScopeLike = ALL_ORGS) -> Adoption:
    """The body of ``GET skills/adoption``. Growth and engagement are anchored at the window's end."""
    org = as_scope(org)
    catalogue = _catalogue()
    used = _skills_per_user(org, window)
    per_org = {}
    if org.is_all:  # staff over all orgs: each org's rate too (seed 001's "org adoption rates")
        org_ids = (MetricSeries.objects.filter(name=EXECUTIONS_METRIC, org__isnull=False)
                   .values_list("org_id", flat=True).distinct())
        active = Counter(org_id for org_id, _user_id, _skills in used)  # over all orgs a user is (org, user_id)
        per_org["orgs"] = [
            OrgAdoption(org=each.slug, **adoption_rate(window, org=each, catalogue=catalogue),
                        active_users=active[each.pk])
            for each in Organization.objects.filter(id__in=list(org_ids)).order_by("slug")
        ]
    return Adoption(
        start=window.start, end=window.end,
        skills_per_user=_distribution(used),
        **adoption_rate(window, org=org, catalogue=catalogue),
        weekly_growth=weekly_growth(window.end, org=org),
        **engagement(window.end, org=org),
        **per_org,
    )


def skill_adoption(skill_id: str, window: Window) -> dict:
    """One skill over all orgs: its users, the orgs using it, and its share of each org's active users."""
    used = [part.filter(skill_id=skill_id) for part in _pairs(ALL_ORGS, window)]
    users = _distinct_per(used, [], ["org_id", "user_id"])[0][0]
    active = _active_users(ALL_ORGS, window)
    orgs = _distinct_per(used, [], ["org_id"])[0][0]
    return {"users": users, "active_users": active, "user_share": users / active if active else None, "orgs": orgs,
            **window.as_dict()}
