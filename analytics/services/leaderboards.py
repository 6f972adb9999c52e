"""Leaderboards: top by usage, top by rating, most improved, trending new (docs/leaderboards.md).

    compute_board(board_type, *, org=ALL_ORGS, now=None, limit=CACHE_SIZE) -> [BoardRow]   (computed now)
    usage_board(window, *, org=ALL_ORGS, limit=CACHE_SIZE) -> [UsageRow]                  (any window)
    get_board(board_type, *, org=ALL_ORGS, limit=10, now=None) -> Leaderboard  (from the cache; fills it if needed)
    window_board(window, *, org=ALL_ORGS, limit=10) -> Leaderboard       (the usage board over a window, now)
    board_request(board_type, limit, window_fields) -> None  (a reader's request; BoardRequestError names the field)
    compute_leaderboards(now=None) -> dict                              (the job: every org and all orgs)

Every board is a list of rows ``rank``, ``skill_id``, ``score`` and the figures behind the
score, one row model per board type (``ROW_MODELS``); ``Leaderboard`` is the body of
``GET skills/leaderboard``. Execution
counts, success rates and p95 latencies come from the metrics query layer
(``skill.executions`` and ``skill.latency_ms``); ratings are plain aggregates of
their table. The job ``analytics.compute_leaderboards`` stores the boards in
``leaderboard_cache``; readers serve from it and compute a board only when it is
missing or older than ``MAX_AGE`` (twice the job's interval).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone
from pydantic import Field

from analytics.models import LeaderboardEntry, MetricSeries, Organization, Skill, SkillExecution, SkillRating
from analytics.models.leaderboards import BoardType
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC, NEUTRAL_RATING
from analytics.platform.contracts import ResponseContract
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.skills import execution_counts, skill_id_of

logger = logging.getLogger(__name__)

BOARD_TYPES = tuple(BoardType.values)  # usage, rating, most_improved, trending_new
BoardTypeName = Literal["usage", "rating", "most_improved", "trending_new"]
assert get_args(BoardTypeName) == BOARD_TYPES, "BoardTypeName must list the BoardType values"
JOB_INTERVAL = timedelta(minutes=15)  # analytics/schedule.py runs the job this often
MAX_AGE = 2 * JOB_INTERVAL  # a cached board older than this is stale: one missed run is tolerated
CACHE_SIZE = 100  # ranks kept per board; also the largest ``limit`` a reader may ask for
USAGE_PERIOD = timedelta(days=30)
WEEK = timedelta(days=7)
NEW_SKILL_PERIOD = timedelta(days=14)
# The rating board: a Bayesian average, as if BOARD_RATING_PRIOR_WEIGHT users had rated every skill
# BOARD_RATING_PRIOR_MEAN stars (docs/leaderboards.md, Top by rating). Not the health score's rating prior
# of 5 ratings (docs/health-score.md): two documented figures, deliberately separate.
BOARD_RATING_PRIOR_MEAN = NEUTRAL_RATING
BOARD_RATING_PRIOR_WEIGHT = 10
# Most improved: executions needed in each of the two weeks, and successful ones for the latency term.
MIN_WEEKLY_EXECUTIONS = 20
MIN_LATENCY_SAMPLES = 10
# Trending new: last week's executions count as at least this many, so that 1 → 4 is not "300 % growth".
GROWTH_BASE_FLOOR = 10

DESCRIPTIONS: dict[str, str] = {
    BoardType.USAGE: "Executions in the 30 days before computed_at.",
    BoardType.RATING: "Bayesian average of current ratings: (C·m + sum) / (C + n) with "
                      f"m = {BOARD_RATING_PRIOR_MEAN:g} stars and C = {BOARD_RATING_PRIOR_WEIGHT} ratings.",
    BoardType.MOST_IMPROVED: "Success rate change in percentage points plus relative p95 latency improvement in "
                             f"percent, this week against last; at least {MIN_WEEKLY_EXECUTIONS} executions in "
                             "each week; only skills that improved.",
    BoardType.TRENDING_NEW: "Skills first seen in the last 14 days, by growth (this week − last week) / "
                            f"max(last week, {GROWTH_BASE_FLOOR}); only growing ones.",
}
WINDOW_DESCRIPTION = "Executions in the window."


# --- The rows and the body (the contract of GET skills/leaderboard) ----------------------


class BoardRow(ResponseContract):
    rank: int = Field(description="1 for the highest score.")
    skill_id: str
    score: float = Field(description="What the board ranks by (see its description); higher is better.")


class UsageRow(BoardRow):
    score: int = Field(description="Executions in the period.")
    execution_count: int
    success_count: int
    failure_count: int
    success_rate: float = Field(description="A fraction 0-1.")


class RatingRow(BoardRow):
    score: float = Field(description="Bayesian average rating (stars).")
    rating_avg: float = Field(description="The plain mean of the current ratings.")
    rating_count: int
    prior_mean: float
    prior_weight: int


class MostImprovedRow(BoardRow):
    score: float = Field(description="success_rate_change_pp + latency_improvement_pct (0 when null).")
    executions_this_week: int
    executions_last_week: int
    success_rate_this_week: float
    success_rate_last_week: float
    success_rate_change_pp: float = Field(description="In percentage points.")
    p95_latency_ms_this_week: float | None = Field(description="Of successful executions.")
    p95_latency_ms_last_week: float | None
    latency_improvement_pct: float | None = Field(
        description=f"Null unless both weeks have {MIN_LATENCY_SAMPLES} successful executions.")


class TrendingNewRow(BoardRow):
    score: float = Field(description="Growth: (this week − last week) / max(last week, floor).")
    first_seen: datetime = Field(description="The skill's earliest recorded execution.")
    executions_this_week: int
    executions_last_week: int


ROW_MODELS: dict[str, type[BoardRow]] = {
    BoardType.USAGE: UsageRow, BoardType.RATING: RatingRow, BoardType.MOST_IMPROVED: MostImprovedRow,
    BoardType.TRENDING_NEW: TrendingNewRow,
}
ROW_FIELDS = frozenset(BoardRow.model_fields)  # rank, skill_id, score: columns of the cache; the rest is details


def _no_default(schema: dict) -> None:
    schema.pop("default", None)


def absent_unless_given(description: str) -> Any:
    """A response field that is left out of the body, never null, when it has no value."""
    return Field(None, exclude_if=lambda value: value is None, json_schema_extra=_no_default, description=description)


class Leaderboard(ResponseContract):
    """The body of ``GET skills/leaderboard``."""

    type: BoardTypeName
    computed_at: datetime = Field(description="When the board was computed (by the job, or now).")
    cached: bool = Field(description="Served from leaderboard_cache (not stale).")
    description: str
    start: datetime = absent_unless_given("Only for a usage board over a given window.")
    end: datetime = absent_unless_given("Only for a usage board over a given window.")
    results: list[UsageRow | RatingRow | MostImprovedRow | TrendingNewRow] = Field(
        description="Best first; each row also carries the figures behind its score, as its board type has them.")


# --- Periods ---------------------------------------------------------------------------


def weeks(now: datetime) -> tuple[Window, Window]:
    """This week (the 7 days ending now) and last week (the 7 days before; windows include both ends)."""
    this_week = Window(now - WEEK, now)
    return this_week, Window(now - 2 * WEEK, this_week.start - timedelta(microseconds=1))


def _ranked(scored: list[tuple[str, float, dict]], limit: int, row_model: type[BoardRow]) -> list:
    """Highest score first; a tie goes to the skill id in alphabetical order, so the order is stable.

    A skill deleted from the catalogue keeps its metric series; it is left off the boards.
    """
    known = set(Skill.objects.filter(skill_id__in=[item[0] for item in scored]).values_list("skill_id", flat=True))
    ordered = sorted((item for item in scored if item[0] in known), key=lambda item: (-item[1], item[0]))[:limit]
    return [row_model(rank=rank, skill_id=skill_id, score=score, **details)
            for rank, (skill_id, score, details) in enumerate(ordered, start=1)]


# --- The boards ------------------------------------------------------------------------


def usage_board(window: Window, *, org: ScopeLike = ALL_ORGS, limit: int = CACHE_SIZE,
                counts: dict[str, dict] | None = None) -> list[UsageRow]:
    """Most executed skills in the window (executions from the query layer, or the caller's ``counts`` of
    ``execution_counts`` over the same window and org)."""
    counts = execution_counts(window, org=org) if counts is None else counts
    return _ranked([(skill_id, figures["execution_count"], figures) for skill_id, figures in counts.items()
                    if figures["execution_count"] > 0], limit, UsageRow)


def rating_board(*, org: ScopeLike = ALL_ORGS, limit: int = CACHE_SIZE) -> list[RatingRow]:
    """Skills with at least one current rating, by Bayesian average (all-time; a user's newest rating counts)."""
    ratings = as_scope(org).filter(SkillRating.objects.filter(replaced_at__isnull=True))
    prior_mean, prior_weight = BOARD_RATING_PRIOR_MEAN, BOARD_RATING_PRIOR_WEIGHT
    scored = []
    for row in ratings.values("skill_id").annotate(total=Sum("rating"), count=Count("id")).order_by():
        total, count = row["total"], row["count"]
        score = (prior_weight * prior_mean + total) / (prior_weight + count)
        scored.append((row["skill_id"], score, {"rating_avg": total / count, "rating_count": count,
                                                "prior_mean": prior_mean, "prior_weight": prior_weight}))
    return _ranked(scored, limit, RatingRow)


def _successful_p95(window: Window, org) -> dict[str, query.GroupStats]:
    # Successful executions only, as in the health score: failures often fail fast and would flatter a skill.
    groups = query.grouped_statistics(LATENCY_METRIC, window, ["skill_id"], org=org, tags={"success": "true"})
    return {skill_id_of(group): group for group in groups}


def most_improved_board(*, org: ScopeLike = ALL_ORGS, now: datetime | None = None,
                        limit: int = CACHE_SIZE) -> list[MostImprovedRow]:
    """Success rate (percentage points) plus p95 latency (percent) improvement, this week against last."""
    now = now or timezone.now()
    this_week, last_week = weeks(now)
    counts_now, counts_before = execution_counts(this_week, org=org), execution_counts(last_week, org=org)
    eligible = [skill_id for skill_id, figures in counts_now.items()
                if figures["execution_count"] >= MIN_WEEKLY_EXECUTIONS
                and counts_before.get(skill_id, {}).get("execution_count", 0) >= MIN_WEEKLY_EXECUTIONS]
    if not eligible:
        return []
    latency_now, latency_before = _successful_p95(this_week, org), _successful_p95(last_week, org)
    scored = []
    for skill_id in eligible:
        current, previous = counts_now[skill_id], counts_before[skill_id]
        success_change = 100 * (current["success_rate"] - previous["success_rate"])
        p95_now, p95_before = latency_now.get(skill_id), latency_before.get(skill_id)
        latency_change = None
        if (p95_now and p95_before and p95_now.count >= MIN_LATENCY_SAMPLES
                and p95_before.count >= MIN_LATENCY_SAMPLES
                and p95_now.p95 is not None and p95_before.p95 is not None):  # (None only without samples)
            # A baseline under 1 ms is taken as 1 ms, so that a near-zero one cannot blow the ratio up.
            latency_change = 100 * (p95_before.p95 - p95_now.p95) / max(p95_before.p95, 1.0)
        score = success_change + (latency_change or 0.0)
        if score <= 0:
            continue  # a board of improvement lists skills that improved
        scored.append((skill_id, score, {
            "executions_this_week": current["execution_count"], "executions_last_week": previous["execution_count"],
            "success_rate_this_week": current["success_rate"], "success_rate_last_week": previous["success_rate"],
            "success_rate_change_pp": success_change,
            "p95_latency_ms_this_week": p95_now.p95 if p95_now else None,
            "p95_latency_ms_last_week": p95_before.p95 if p95_before else None,
            "latency_improvement_pct": latency_change,
        }))
    return _ranked(scored, limit, MostImprovedRow)


def first_seen(skill_ids, *, org: ScopeLike = ALL_ORGS) -> dict[str, datetime]:
    """Each skill's earliest recorded execution (in the org).

    Read from ``skill_usage``: "when was it first used" is a fact about the rows,
    not a count over a window, and the (org, skill, timestamp) index answers it
    per skill. Raw executions are kept ANALYTICS_DB_RETENTION_DAYS, so a skill
    unused for longer than that counts as new when it comes back.
    """
    rows = as_scope(org).filter(SkillExecution.objects.filter(skill_id__in=list(skill_ids)))
    return dict(rows.values("skill_id").annotate(first=Min("timestamp")).order_by().values_list("skill_id", "first"))


def trending_new_board(*, org: ScopeLike = ALL_ORGS, now: datetime | None = None,
                       limit: int = CACHE_SIZE) -> list[TrendingNewRow]:
    """Skills first seen in the last 14 days, by growth of executions this week against last."""
    now = now or timezone.now()
    this_week, last_week = weeks(now)
    counts_now, counts_before = execution_counts(this_week, org=org), execution_counts(last_week, org=org)
    recent = {skill_id for skill_id, figures in {**counts_before, **counts_now}.items() if figures["execution_count"]}
    seen = first_seen(recent, org=org)
    scored = []
    for skill_id in sorted(recent):
        first = seen.get(skill_id)
        if first is None or first < now - NEW_SKILL_PERIOD:
            continue
        executions = counts_now.get(skill_id, {}).get("execution_count", 0)
        before = counts_before.get(skill_id, {}).get("execution_count", 0)
        # In its first week a skill has no last week: it is measured against the floor, like any small base.
        growth = (executions - before) / max(before, GROWTH_BASE_FLOOR)
        if growth <= 0:
            continue
        scored.append((skill_id, growth, {"first_seen": first, "executions_this_week": executions,
                                          "executions_last_week": before}))
    return _ranked(scored, limit, TrendingNewRow)


def compute_board(board_type: str, *, org: ScopeLike = ALL_ORGS, now: datetime | None = None,
                  limit: int = CACHE_SIZE) -> Sequence[BoardRow]:
    now = now or timezone.now()
    if board_type == BoardType.USAGE:
        return usage_board(Window(now - USAGE_PERIOD, now), org=org, limit=limit)
    if board_type == BoardType.RATING:
        return rating_board(org=org, limit=limit)
    if board_type == BoardType.MOST_IMPROVED:
        return most_improved_board(org=org, now=now, limit=limit)
    if board_type == BoardType.TRENDING_NEW:
        return trending_new_board(org=org, now=now, limit=limit)
    raise ValueError(f"type must be one of {', '.join(BOARD_TYPES)}")


# --- A reader's request ------------------------------------------------------------------


class BoardRequestError(ValueError):
    """A leaderboard request that cannot be served; ``field`` names the parameter at fault."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def board_request(board_type: str, limit: int, window_fields: Sequence[str] = ()) -> None:
    """Check a request for a board (the API's and the client's): a known type, a limit from 1 to CACHE_SIZE,
    and a window (``window_fields``: the window parameters given) only for the usage board."""
    if board_type not in BOARD_TYPES:
        raise BoardRequestError("type", f"Must be one of {', '.join(BOARD_TYPES)}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= CACHE_SIZE:
        raise BoardRequestError("limit", f"Must be an integer from 1 to {CACHE_SIZE}.")
    if window_fields and board_type != BoardType.USAGE:
        raise BoardRequestError(window_fields[0],
                                f"The {board_type} board has a fixed period; only usage takes a window.")


# --- The cache -------------------------------------------------------------------------


def cache_org(scope: Scope) -> Organization | None:
    """The ``org`` of a scope's cached rows: the org itself, or NULL for the board over all orgs.

    No board is kept for PLATFORM alone (boards are about orgs' skill data), so NULL is free for ALL_ORGS.
    """
    if scope.is_platform:
        raise ValueError("Leaderboards are cached per org and for ALL_ORGS, not for PLATFORM.")
    return None if scope.is_all else scope.org


def _cache_rows(scope: Scope):
    return LeaderboardEntry.objects.filter(org=cache_org(scope))


def _entries(board_type: str, scope: Scope, board: Sequence[BoardRow],
             computed_at: datetime) -> list[LeaderboardEntry]:
    return [
        LeaderboardEntry(org=cache_org(scope), metric_type=board_type, rank=row.rank, skill_id=row.skill_id,
                         score=row.score, computed_at=computed_at,
                         details=row.model_dump(mode="json", exclude=set(ROW_FIELDS)))
        for row in board
    ]


def store_boards(org: ScopeLike, boards: dict[str, Sequence[BoardRow]], computed_at: datetime) -> int:
    """Replace the scope's cached boards of these types in one transaction. Returns rows written."""
    scope = as_scope(org)
    entries = [entry for board_type, board in boards.items() for entry in _entries(board_type, scope, board,
                                                                                    computed_at)]
    with transaction.atomic():
        _cache_rows(scope).filter(metric_type__in=list(boards)).delete()
        LeaderboardEntry.objects.bulk_create(entries)
    return len(entries)


def cached_board(board_type: str, *, org: ScopeLike = ALL_ORGS) -> tuple[datetime | None, Sequence[BoardRow]]:
    """(computed_at, rows) of the cached board; (None, []) when there is none."""
    rows = list(_cache_rows(as_scope(org)).filter(metric_type=board_type).order_by("rank"))
    if not rows:
        return None, []
    row_model = ROW_MODELS[board_type]
    return rows[0].computed_at, [row_model.model_validate({**row.details, "rank": row.rank, "skill_id": row.skill_id,
                                                           "score": row.score}) for row in rows]


def get_board(board_type: str, *, org: ScopeLike = ALL_ORGS, limit: int = 10,
              now: datetime | None = None) -> Leaderboard:
    """The cached board, or one computed now (and cached) when it is missing or stale.

    An empty board is never stored, so it counts as missing: computing it again is cheap.
    """
    if board_type not in BOARD_TYPES:
        raise ValueError(f"type must be one of {', '.join(BOARD_TYPES)}")
    org = as_scope(org)
    now = now or timezone.now()
    computed_at, rows = cached_board(board_type, org=org)
    cached = computed_at is not None and now - computed_at <= MAX_AGE
    if not cached:
        computed_at, rows = now, compute_board(board_type, org=org, now=now)
        try:
            store_boards(org, {board_type: rows}, now)
        except IntegrityError:
            # Another reader or the job stored this board at the same moment; theirs is as fresh as ours.
            pass
    return Leaderboard(type=board_type, computed_at=computed_at, cached=cached, description=DESCRIPTIONS[board_type],
                       results=rows[:limit])


def window_board(window: Window, *, org: ScopeLike = ALL_ORGS, limit: int = 10,
                 counts: dict[str, dict] | None = None) -> Leaderboard:
    """The usage board over any window, computed now (not cached)."""
    return Leaderboard(type="usage", computed_at=timezone.now(), cached=False, description=WINDOW_DESCRIPTION,
                       start=window.start, end=window.end,
                       results=usage_board(window, org=org, limit=limit, counts=counts))


# --- The job ---------------------------------------------------------------------------


def orgs_with_skill_data() -> list[Organization]:
    """Orgs that recorded executions (series of the small series table) or ratings."""
    ids = set(MetricSeries.objects.filter(name=EXECUTIONS_METRIC, org__isnull=False)
              .values_list("org_id", flat=True).distinct())
    ids.update(SkillRating.objects.values_list("org_id", flat=True).distinct())
    return list(Organization.objects.filter(id__in=ids).order_by("slug"))


def compute_leaderboards(now: datetime | None = None) -> dict[str, int]:
    """Compute every board for every org with skill data and for all orgs together; replace the cache."""
    now = now or timezone.now()
    started = time.monotonic()
    orgs = orgs_with_skill_data()
    rows = 0
    for scope in [ALL_ORGS, *(Scope.of(org) for org in orgs)]:
        boards = {board_type: compute_board(board_type, org=scope, now=now) for board_type in BOARD_TYPES}
        for attempt in (1, 2):
            try:
                rows += store_boards(scope, boards, now)
                break
            except IntegrityError:
                if attempt == 2:  # a reader filled a board between our delete and insert, twice: leave it
                    logger.warning("compute_leaderboards: %s left as another writer stored it", scope)
    # Orgs that no longer have skill data keep no boards.
    stale = LeaderboardEntry.objects.filter(org__isnull=False).exclude(org__in=orgs).delete()[0]
    result = {"orgs": len(orgs), "boards": (len(orgs) + 1) * len(BOARD_TYPES), "rows": rows, "removed": stale}
    logger.info("compute_leaderboards: %(orgs)d orgs, %(boards)d boards, %(rows)d rows, %(removed)d removed "
                "in %(seconds).2fs", {**result, "seconds": time.monotonic() - started})
    return result


def skill_ranks(skill_id: str) -> list[dict]:
    """Where a skill stands on each cached board (every org and all orgs), for its admin page."""
    rows = (LeaderboardEntry.objects.filter(skill_id=skill_id).select_related("org")
            .order_by("metric_type", "org__slug", "rank"))
    return [{"board": row.get_metric_type_display(), "org": row.org.slug if row.org else "all orgs",
             "rank": row.rank, "score": row.score, "computed_at": row.computed_at} for row in rows]

