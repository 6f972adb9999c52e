"""Recommendations by item-to-item co-usage, their log, and how often they were followed (docs/leaderboards.md).

    recommend(user_id, window, *, org=ALL_ORGS, limit=10) -> list[Recommendation]
    serve_recommendations(user_id, window, *, org=ALL_ORGS, limit=10, now=None) -> list[Recommendation]  (+ log)
    recommendations_body(user_id, window, *, org=ALL_ORGS, limit=10) -> Recommendations  (GET skills/recommendations)
    with_outcome(queryset) -> queryset annotated with followed_at          (on read; nothing is stored)
    outcome(log_row, now) -> "followed" | "pending" | "not followed"
    effectiveness(*, org=ALL_ORGS, now=None) -> {"overall": {...}, "per_skill": [...]}

For each skill A the user used in the window, the *neighbours* are the other users
who used A; a candidate X (not used by the user, not deprecated) scores
``c / (n + 1)``, where ``n`` is the number of A's neighbours and ``c`` how many of
them used X: the share of neighbours using it, shrunk by one imaginary neighbour
who does not, so that "1 of 1" (0.5) does not outrank "12 of 15" (0.75). X takes
its best anchor A, which the reason names: "used by 12 of 15 users who use
parse_json". A user without history in the window gets the most widely used
skills instead (popularity: ``c`` of the ``n`` active users, the same formula).

Who used what is per-user data that the metric series do not carry (``user_id`` is
not a tag), so it is read from ``skill_usage`` with DISTINCT and GROUP BY in SQL:
the users × skills relation, not a second aggregation of the time series. A user is
a ``user_id`` within an org; over all orgs (staff) the pair (org, user_id), and the
requested ``user_id`` names that user in every org.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, get_args

from django.db import connection
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import Field

from analytics.models import Organization, RecommendationLog, Skill, SkillExecution
from analytics.platform.contracts import ResponseContract
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.windows import Window

DEFAULT_WINDOW = timedelta(days=30)  # the history that recommendations are drawn from
FOLLOW_UP = timedelta(days=7)  # a recommendation is followed by a use of that skill by that user within this
MAX_LIMIT = 100  # the most recommendations one request may ask for
Strategy = Literal["co_usage", "popularity"]
CO_USAGE, POPULARITY = get_args(Strategy)


class Recommendation(ResponseContract):
    """One recommendation; a row of the body. The figures behind its score stay out of the body."""

    skill_id: str
    score: float = Field(description="c / (n + 1): the share of neighbours (or active users) using it, shrunk.")
    reason: str = Field(description='E.g. "used by 12 of 15 users who use parse_json".')
    strategy: Strategy = Field(description="co_usage; popularity for a user without history in the window.")
    used_by: int = Field(exclude=True)  # c: neighbours (or active users) who used it
    out_of: int = Field(exclude=True)  # n: the neighbours of the anchor (or all active users)
    anchor: str | None = Field(None, exclude=True)  # the user's skill whose neighbours use it


class Recommendations(ResponseContract):
    """The body of ``GET skills/recommendations``."""

    user_id: str
    start: datetime
    end: datetime
    results: list[Recommendation] = Field(description="Best first.")


def _pairs(window: Window, scope: Scope) -> tuple[str, list]:
    """SQL of the distinct (org_id, user_id, skill_id) used in the window, and its parameters."""
    rows = scope.filter(SkillExecution.objects.filter(timestamp__gte=window.start, timestamp__lte=window.end,
                                                      user_id__isnull=False))
    sql, params = rows.values("org_id", "user_id", "skill_id").distinct().order_by().query.sql_with_params()
    return sql, list(params)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _score(used_by: int, out_of: int) -> float:
    return used_by / (out_of + 1)


def _user_skills(user_id: str, window: Window, scope: Scope) -> list[str]:
    rows = scope.filter(SkillExecution.objects.filter(user_id=user_id, timestamp__gte=window.start,
                                                      timestamp__lte=window.end))
    return sorted(set(rows.values_list("skill_id", flat=True).distinct()))


def _deprecated() -> set[str]:
    return set(Skill.objects.filter(deprecated=True).values_list("skill_id", flat=True))


def _by_co_usage(user_id: str, anchors: list[str], window: Window, org) -> list[Recommendation]:
    pairs, params = _pairs(window, org)
    marks = ", ".join(["%s"] * len(anchors))
    neighbours = dict(_fetch(
        f"WITH pairs AS ({pairs}) SELECT skill_id, COUNT(*) FROM pairs "
        f"WHERE skill_id IN ({marks}) AND user_id <> %s GROUP BY skill_id",
        [*params, *anchors, user_id],
    ))
    co_usage = _fetch(
        f"WITH pairs AS ({pairs}) SELECT a.skill_id, x.skill_id, COUNT(*) FROM pairs a "
        "JOIN pairs x ON a.org_id = x.org_id AND a.user_id = x.user_id "
        f"WHERE a.skill_id IN ({marks}) AND a.user_id <> %s AND x.skill_id NOT IN ({marks}) "
        "GROUP BY a.skill_id, x.skill_id",
        [*params, *anchors, user_id, *anchors],
    )
    deprecated = _deprecated()
    best: dict[str, Recommendation] = {}
    for anchor, skill_id, used_by in co_usage:
        if skill_id in deprecated:
            continue
        out_of = neighbours[anchor]
        candidate = Recommendation(skill_id=skill_id, score=_score(used_by, out_of), strategy=CO_USAGE,
                                   reason=f"used by {used_by} of {out_of} users who use {anchor}",
                                   used_by=used_by, out_of=out_of, anchor=anchor)
        current = best.get(skill_id)
        # The best anchor: higher score, then more co-users, then the anchor's id (a stable choice).
        if current is None or (-candidate.score, -candidate.used_by, anchor) < (-current.score, -current.used_by,
                                                                                 current.anchor):
            best[skill_id] = candidate
    return list(best.values())


def _by_popularity(window: Window, org) -> list[Recommendation]:
    pairs, params = _pairs(window, org)
    users = _fetch(f"WITH pairs AS ({pairs}) SELECT COUNT(*) FROM (SELECT DISTINCT org_id, user_id FROM pairs) u",
                   params)[0][0]
    deprecated = _deprecated()
    return [
        Recommendation(skill_id=skill_id, score=_score(used_by, users), strategy=POPULARITY,
                       reason=f"used by {used_by} of {users} active users", used_by=used_by, out_of=users)
        for skill_id, used_by in _fetch(f"WITH pairs AS ({pairs}) SELECT skill_id, COUNT(*) FROM pairs "
                                        "GROUP BY skill_id", params)
        if skill_id not in deprecated
    ]


def recommend(user_id: str, window: Window, *, org: ScopeLike = ALL_ORGS, limit: int = 10) -> list[Recommendation]:
    """Best first (score, then co-users, then skill id). Popularity only for a user with no history."""
    org = as_scope(org)
    anchors = _user_skills(user_id, window, org)
    found = _by_co_usage(user_id, anchors, window, org) if anchors else _by_popularity(window, org)
    return sorted(found, key=lambda item: (-item.score, -item.used_by, item.skill_id))[:limit]


def log_org(scope: Scope) -> Organization | None:
    """The ``org`` of a scope's log rows: the org, or NULL for recommendations drawn from all orgs' data."""
    if scope.is_platform:
        raise ValueError("Recommendations are drawn from one org's data or from ALL_ORGS, not from PLATFORM.")
    return None if scope.is_all else scope.org


def serve_recommendations(user_id: str, window: Window, *, org: ScopeLike = ALL_ORGS, limit: int = 10,
                          now: datetime | None = None) -> list[Recommendation]:
    """Recommend and log every recommendation served (``recommendation_log``)."""
    org = as_scope(org)
    now = now or timezone.now()
    found = recommend(user_id, window, org=org, limit=limit)
    logged_under = log_org(org)
    RecommendationLog.objects.bulk_create([
        RecommendationLog(org=logged_under, user_id=user_id, skill_id=item.skill_id, score=item.score,
                          reason=item.reason, strategy=item.strategy, timestamp=now)
        for item in found
    ])
    return found


def recommendations_body(user_id: str, window: Window, *, org: ScopeLike = ALL_ORGS,
                         limit: int = 10) -> Recommendations:
    """Serve (and log) a user's recommendations, as the body of ``GET skills/recommendations``."""
    found = serve_recommendations(user_id, window, org=org, limit=limit)
    return Recommendations(user_id=user_id, start=window.start, end=window.end, results=found)


# --- Effectiveness -------------------------------------------------------------------


def with_outcome(queryset):
    """Annotate each logged recommendation with ``followed_at``: that user's first use of that skill
    (in the same org; any org for an all-orgs row) after it was served and within FOLLOW_UP, else null."""
    follow_until = ExpressionWrapper(OuterRef("timestamp") + Value(FOLLOW_UP), output_field=DateTimeField())
    uses = (SkillExecution.objects
            .filter(user_id=OuterRef("user_id"), skill_id=OuterRef("skill_id"),
                    org_id=Coalesce(OuterRef("org_id"), F("org_id")),
                    timestamp__gt=OuterRef("timestamp"), timestamp__lte=follow_until)
            .order_by("timestamp").values("timestamp")[:1])
    return queryset.annotate(followed_at=Subquery(uses, output_field=DateTimeField()))


def outcome(row, now: datetime | None = None) -> str:
    """Of a row annotated by ``with_outcome``: followed, pending (its 7 days are not over), or not followed."""
    if row.followed_at is not None:
        return "followed"
    now = now or timezone.now()
    return "pending" if now - row.timestamp < FOLLOW_UP else "not followed"


def _rates(figures: dict) -> dict:
    decided = figures["followed"] + figures["not_followed"]
    return {**figures, "effectiveness": figures["followed"] / decided if decided else None}


def effectiveness(*, org: ScopeLike = ALL_ORGS, now: datetime | None = None) -> dict:
    """Share of logged recommendations followed within 7 days, overall and per skill.

    Recommendations younger than 7 days and not followed yet are *pending*: they count
    in ``logged`` but not in the share, which is followed / (followed + not followed).
    """
    now = now or timezone.now()
    rows = as_scope(org).filter(RecommendationLog.objects.all())
    counted = {
        "logged": Count("id"),
        "followed": Count("id", filter=Q(followed_at__isnull=False)),
        "pending": Count("id", filter=Q(followed_at__isnull=True, timestamp__gt=now - FOLLOW_UP)),
    }
    per_skill = []
    totals = {"logged": 0, "followed": 0, "pending": 0, "not_followed": 0}
    for row in with_outcome(rows).values("skill_id").annotate(**counted).order_by("-logged", "skill_id"):
        figures = {key: row[key] for key in counted}
        figures["not_followed"] = figures["logged"] - figures["followed"] - figures["pending"]
        per_skill.append({"skill_id": row["skill_id"], **_rates(figures)})
        for key in totals:
            totals[key] += figures[key]
    return {"overall": _rates(totals), "per_skill": per_skill, "follow_up_days": FOLLOW_UP.days}
