"""Skill analytics: recording executions, ratings and installs, and the figures read back.

    ExecutionItem, RatingItem, InstallItem                            (the items; their annotations are the contract)
    record_executions(org, items) / record_ratings(org, items) / record_installs(org, items) -> IngestResult
    set_health_score(org, skill_id, score, *, source="manual") -> SkillHealthScore
    skill_has_data(skill_id, *, org=ALL_ORGS) -> bool
    skill_summary(skill_id, window, *, org=ALL_ORGS) -> SkillSummary  (the body of GET skills/{id})
    skill_summaries(window, *, org=ALL_ORGS) -> list[SkillSummary]
    skill_trend(skill_id, window, interval, *, org=ALL_ORGS) -> SkillTrend  (the body of GET skills/{id}/trend)
    execution_counts(window, *, org=ALL_ORGS) -> {skill_id: counts}
    usage_leaderboard(window, *, org=ALL_ORGS, limit=10) -> list[dict]

An execution is written twice, in one transaction: a ``skill_usage`` row (the
record of who ran which version and what failed) and two events of the metrics
query layer, ``skill.latency_ms`` (timer) and ``skill.executions`` (counter),
tagged ``skill_id`` and ``success``. Every count, rate, percentile and trend of a
skill is then asked of that layer — the layer alert rules, charts and exporters
ask, and the one that the rollups of long windows sit behind — rather than of a
second aggregation over ``skill_usage``. Writing both costs two narrow rows per
execution; letting the query layer read ``skill_usage`` instead would give it a
second storage shape to aggregate and to roll up. Ratings and installs are not
time series: their all-time figures are plain aggregates of their own tables.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from django.db import transaction
from django.db.models import Avg, Count, Q
from django.utils import timezone
from pydantic import AfterValidator, Field, StrictBool
from pydantic_core import PydanticCustomError

from analytics.models import (
    MetricType,
    Organization,
    Skill,
    SkillExecution,
    SkillExecutionTotals,
    SkillHealthScore,
    SkillInstall,
    SkillRating,
    SkillUsageDay,
    SkillUserDay,
    SkillUserLastUse,
)
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC, RESERVED_SKILL_IDS, SKILL_ID_MAX_LENGTH
from analytics.platform.contracts import (
    PRINTABLE,
    Bounded,
    Duration,
    EventId,
    EventTime,
    OrgId,
    Printable,
    ResponseContract,
    Source,
    validate_one,
)
from analytics.platform.scope import ALL_ORGS, ScopeLike, as_scope
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.bulk_insert import insert_rows
from analytics.services.health_score import health_scores
from analytics.services.metrics_ingest import (
    INSERT_CHUNK,
    IngestResult,
    MetricItem,
    drop_duplicates,
    ingest_metric_items,
)

EXECUTION_COLUMNS = ["skill_id", "org_id", "user_id", "success", "latency_ms", "error_type", "skill_version",
                     "timestamp", "event_id"]
TrendInterval = Literal["hour", "day"]
TREND_INTERVALS: dict[str, query.Interval] = {"hour": "1h", "day": "1d"}
USER_ID_MAX_LENGTH = 200


# --- Items: the contract of the three ingest endpoints and of the client's writes ----------
# validate_items(ExecutionItem, data, org_slug=...) checks them; code building an item itself is trusted.


def _not_reserved(value: str) -> str:
    if value in RESERVED_SKILL_IDS:
        raise PydanticCustomError("reserved_skill_id",
                                  f"{value!r} is a reserved word of the skills API and cannot be a skill id.")
    return value


SKILL_ID_PATTERN = r"^[^\s/\x00-\x1f\x7f-\x9f]+$"
SKILL_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": SKILL_ID_MAX_LENGTH, "pattern": SKILL_ID_PATTERN,
                   "not": {"enum": sorted(RESERVED_SKILL_IDS)}}
SkillId = Annotated[str, Field(min_length=1, max_length=SKILL_ID_MAX_LENGTH, pattern=SKILL_ID_PATTERN,
                               json_schema_extra={"not": SKILL_ID_SCHEMA["not"]},
                               description="The orchestrator's id: no '/' or whitespace, not a reserved path word."),
                    AfterValidator(_not_reserved)]
UserId = Annotated[str | None, Field(None, max_length=USER_ID_MAX_LENGTH, pattern=PRINTABLE,
                                     description="Who used it (optional).")]


@dataclass(frozen=True)
class ExecutionItem:
    skill_id: SkillId
    success: StrictBool
    latency_ms: Duration
    timestamp: EventTime = field(default_factory=timezone.now)
    user_id: UserId = None
    error_type: Annotated[str, Printable(200)] = ""
    skill_version: Annotated[str, Printable(64)] = ""
    event_id: EventId | None = None
    org_id: OrgId = None


@dataclass(frozen=True)
class RatingItem:
    skill_id: SkillId
    rating: Annotated[int, Bounded(1, 5, "1 to 5 stars. With a user_id, replaces that user's earlier rating.")]
    timestamp: EventTime = field(default_factory=timezone.now)
    user_id: UserId = None
    event_id: EventId | None = None
    org_id: OrgId = None


@dataclass(frozen=True)
class HealthScoreItem:
    skill_id: SkillId
    score: Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]


@dataclass(frozen=True)
class InstallItem:
    skill_id: SkillId
    timestamp: EventTime = field(default_factory=timezone.now)
    user_id: UserId = None
    event_id: EventId | None = None
    org_id: OrgId = None


# --- Recording -------------------------------------------------------------------------


def _ensure_skills(skill_ids: set[str]) -> None:
    """The global catalogue gains a skill on its first use."""
    known = set(Skill.objects.filter(skill_id__in=skill_ids).values_list("skill_id", flat=True))
    missing = skill_ids - known
    if missing:
        now = timezone.now()
        # Another writer may add the same skill meanwhile.
        Skill.objects.bulk_create([Skill(skill_id=skill_id, created_at=now) for skill_id in sorted(missing)],
                                  ignore_conflicts=True)


def _note_activity(items: Sequence[ExecutionItem | RatingItem | InstallItem]) -> None:
    """Move each skill's last_recorded_at (and, from executions, its version) forward, never back."""
    newest: dict[str, ExecutionItem | RatingItem | InstallItem] = {}
    for item in items:
        if item.skill_id not in newest or item.timestamp >= newest[item.skill_id].timestamp:
            newest[item.skill_id] = item
    for skill_id, item in newest.items():
        changes: dict[str, object] = {"last_recorded_at": item.timestamp}
        version = getattr(item, "skill_version", "")
        if version:
            changes["version"] = version
        Skill.objects.filter(Q(last_recorded_at__isnull=True) | Q(last_recorded_at__lte=item.timestamp),
                             skill_id=skill_id).update(**changes)


def _derived_event_id(event_id: str | None, kind: str) -> str | None:
    """The metric events of an execution inherit its event_id, so a retried execution stays single."""
    if event_id is None:
        return None
    derived = f"skill:{event_id}:{kind}"
    if len(derived) > 128:  # the metric event_id column's length
        derived = f"skill:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}:{kind}"
    return derived


def execution_metric_items(item: ExecutionItem) -> list[MetricItem]:
    tags = {"skill_id": item.skill_id, "success": "true" if item.success else "false"}
    return [
        MetricItem(metric_name=LATENCY_METRIC, value=item.latency_ms, metric_type=MetricType.TIMER, unit="ms",
                   tags=tags, timestamp=item.timestamp, event_id=_derived_event_id(item.event_id, "latency")),
        MetricItem(metric_name=EXECUTIONS_METRIC, value=1.0, metric_type=MetricType.COUNTER, tags=tags,
                   timestamp=item.timestamp, event_id=_derived_event_id(item.event_id, "executions")),
    ]


@transaction.atomic
def record_executions(org: Organization, items: list[ExecutionItem]) -> IngestResult:
    fresh = drop_duplicates(SkillExecution, org, items)
    if fresh:
        _ensure_skills({item.skill_id for item in fresh})
        insert_rows(SkillExecution._meta.db_table, EXECUTION_COLUMNS, [
            (item.skill_id, org.pk, item.user_id, item.success, item.latency_ms, item.error_type,
             item.skill_version, item.timestamp, item.event_id)
            for item in fresh
        ])
        ingest_metric_items(org, [metric for item in fresh for metric in execution_metric_items(item)])
        SkillExecutionTotals.add(org, fresh)
        SkillUsageDay.add(org, fresh)
        SkillUserDay.add(org, fresh)
        SkillUserLastUse.add(org, fresh)
        _note_activity(fresh)
    return IngestResult(accepted=len(fresh), duplicates=len(items) - len(fresh))


@transaction.atomic
def record_ratings(org: Organization, items: list[RatingItem]) -> IngestResult:
    """Store ratings; per user and skill, the newest (by time; on a tie, the later arrival) is current."""
    fresh = drop_duplicates(SkillRating, org, items)
    if not fresh:
        return IngestResult(accepted=0, duplicates=len(items))
    _ensure_skills({item.skill_id for item in fresh})
    now = timezone.now()
    rated_by_users = [item for item in fresh if item.user_id is not None]
    current: dict[tuple[str, str | None], SkillRating] = {}  # {(skill_id, user_id): current rating}
    if rated_by_users:
        stored = SkillRating.objects.filter(
            org=org, replaced_at__isnull=True, skill_id__in={item.skill_id for item in rated_by_users},
            user_id__in={item.user_id for item in rated_by_users},
        )
        current = {(row.skill_id, row.user_id): row for row in stored}
    replaced_stored, new_rows = [], []
    for item in sorted(fresh, key=lambda item: item.timestamp):
        row = SkillRating(skill_id=item.skill_id, org=org, user_id=item.user_id, rating=item.rating,
                          rated_at=item.timestamp, event_id=item.event_id)
        if item.user_id is not None:
            key = (item.skill_id, item.user_id)
            previous = current.get(key)
            if previous is None or item.timestamp >= previous.rated_at:
                if previous is not None:
                    previous.replaced_at = now
                    if previous.pk is not None:
                        replaced_stored.append(previous)
                current[key] = row
            else:
                row.replaced_at = now  # an older rating than the user's current one
        new_rows.append(row)
    if replaced_stored:  # first, so that the new current rows do not collide with them
        SkillRating.objects.bulk_update(replaced_stored, ["replaced_at"], batch_size=INSERT_CHUNK)
    SkillRating.objects.bulk_create(new_rows, batch_size=INSERT_CHUNK)
    _note_activity(fresh)
    return IngestResult(accepted=len(fresh), duplicates=len(items) - len(fresh))


@transaction.atomic
def record_installs(org: Organization, items: list[InstallItem]) -> IngestResult:
    fresh = drop_duplicates(SkillInstall, org, items)
    if fresh:
        _ensure_skills({item.skill_id for item in fresh})
        SkillInstall.objects.bulk_create(
            [SkillInstall(skill_id=item.skill_id, org=org, user_id=item.user_id, installed_at=item.timestamp,
                          event_id=item.event_id) for item in fresh],
            batch_size=INSERT_CHUNK,
        )
        _note_activity(fresh)
    return IngestResult(accepted=len(fresh), duplicates=len(items) - len(fresh))


@transaction.atomic
def set_health_score(org: Organization, skill_id: str, score: float, *, source: str = "manual",
                     recorded_at: datetime | None = None) -> SkillHealthScore:
    """Set a skill's health explicitly; in effect until newer data supersedes it (docs/health-score.md).

    Raises ContractError (a ValueError) naming ``skill_id`` or ``score`` when either is bad.
    """
    given = validate_one(HealthScoreItem, {"skill_id": skill_id, "score": score})
    _ensure_skills({given.skill_id})
    return SkillHealthScore.objects.create(skill_id=given.skill_id, org=org, score=given.score, source=source,
                                           recorded_at=recorded_at or timezone.now())


# --- Reading ---------------------------------------------------------------------------


def skill_has_data(skill_id: str, *, org: ScopeLike = ALL_ORGS) -> bool:
    """Whether anything was recorded about the skill (in the org)."""
    scope = as_scope(org)
    return any(
        scope.filter(model.objects.filter(skill_id=skill_id)).exists()
        for model in (SkillExecution, SkillRating, SkillInstall, SkillHealthScore)
    )


def skill_id_of(group: query.GroupStats) -> str:
    """The skill of a group of a skill metric grouped by ``skill_id``.

    Every execution is recorded with that tag (``record_executions``); the figures here rely on it.
    """
    return cast(str, group.tags["skill_id"])


EMPTY_EXECUTIONS = {
    "execution_count": 0, "success_count": 0, "failure_count": 0, "success_rate": None, "avg_latency_ms": None,
    "p50_latency_ms": None, "p95_latency_ms": None, "p99_latency_ms": None,
}


def _execution_counts(window: Window, org, tags: dict | None = None) -> dict[str, dict]:
    """Per skill: executions, successes, failures and success rate over the window, from the query layer."""
    counts: dict[str, dict] = defaultdict(lambda: {"execution_count": 0, "success_count": 0})
    for group in query.grouped_statistics(EXECUTIONS_METRIC, window, ["skill_id", "success"], org=org, tags=tags,
                                          with_percentiles=False):
        executions = round(group.sum or 0)  # a counter: the sum of its increments
        skill = counts[skill_id_of(group)]
        skill["execution_count"] += executions
        if group.tags["success"] == "true":
            skill["success_count"] += executions
    for skill in counts.values():
        skill["failure_count"] = skill["execution_count"] - skill["success_count"]
        skill["success_rate"] = skill["success_count"] / skill["execution_count"] if skill["execution_count"] else None
    return dict(counts)


def execution_counts(window: Window, *, org: ScopeLike = ALL_ORGS) -> dict[str, dict]:
    """Per skill with executions in the window: execution_count, success_count, failure_count, success_rate."""
    return _execution_counts(window, org)


def _execution_figures(window: Window, org, skill_id: str | None = None) -> dict[str, dict]:
    """Counts as above plus latency average and percentiles (ms) per skill."""
    tags = {"skill_id": skill_id} if skill_id else None
    figures = _execution_counts(window, org, tags)
    for group in query.grouped_statistics(LATENCY_METRIC, window, ["skill_id"], org=org, tags=tags):
        figures.setdefault(skill_id_of(group), dict(EMPTY_EXECUTIONS)).update(
            avg_latency_ms=group.avg, p50_latency_ms=group.p50, p95_latency_ms=group.p95, p99_latency_ms=group.p99,
        )
    return figures


def rating_figures(skill_ids=None, *, org: ScopeLike = ALL_ORGS) -> dict[str, dict]:
    """All-time current ratings per skill: average and count."""
    rows = as_scope(org).filter(SkillRating.objects.filter(replaced_at__isnull=True))
    if skill_ids is not None:
        rows = rows.filter(skill_id__in=skill_ids)
    return {
        row["skill_id"]: {"rating_avg": row["avg"], "rating_count": row["count"]}
        for row in rows.values("skill_id").annotate(avg=Avg("rating"), count=Count("id")).order_by()
    }


def _install_counts(skill_ids=None, *, org: ScopeLike = ALL_ORGS) -> dict[str, int]:
    rows = as_scope(org).filter(SkillInstall.objects.all())
    if skill_ids is not None:
        rows = rows.filter(skill_id__in=skill_ids)
    return dict(rows.values("skill_id").annotate(count=Count("id")).order_by().values_list("skill_id", "count"))




class SkillSummary(ResponseContract):
    """The body of ``GET skills/{skill_id}``: executions in the window; ratings and installs all-time."""

    skill_id: str
    execution_count: int
    success_count: int
    failure_count: int
    success_rate: float | None = Field(description="A fraction 0-1.")
    avg_latency_ms: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    rating_avg: float | None = Field(description="All-time, current ratings.")
    rating_count: int
    install_count: int = Field(description="All-time.")
    health_score: float | None = Field(description="0-100 now; see docs/health-score.md.")
    health_components: dict[str, Any] = Field(description="The parts of the score and their weights.")
    start: datetime
    end: datetime


class TrendPoint(ResponseContract):
    timestamp: datetime
    executions: int
    success_rate: float | None
    p95_latency_ms: float | None


class SkillTrend(ResponseContract):
    """The body of ``GET skills/{skill_id}/trend``."""

    skill_id: str
    interval: TrendInterval
    start: datetime
    end: datetime
    source: Source
    points: list[TrendPoint]


def _summaries(skill_ids: list[str], window: Window, org, executions: dict[str, dict]) -> list[SkillSummary]:
    ratings = rating_figures(skill_ids, org=org)
    installs = _install_counts(skill_ids, org=org)
    health = health_scores(skill_ids, org=org)
    summaries = []
    for skill_id in skill_ids:
        rating = ratings.get(skill_id, {"rating_avg": None, "rating_count": 0})
        summaries.append(SkillSummary(
            skill_id=skill_id,
            **{**EMPTY_EXECUTIONS, **executions.get(skill_id, {})},
            **rating,
            install_count=installs.get(skill_id, 0),
            health_score=health[skill_id].score,
            health_components=health[skill_id].components,
            start=window.start, end=window.end,
        ))
    return summaries


def skill_summary(skill_id: str, window: Window, *, org: ScopeLike = ALL_ORGS) -> SkillSummary | None:
    """Executions in the window, all-time ratings and installs, and the health score now.

    None when nothing was ever recorded about the skill (in the org).
    """
    if not skill_has_data(skill_id, org=org):
        return None
    return _summaries([skill_id], window, org, _execution_figures(window, org, skill_id))[0]


def skill_summaries(window: Window, *, org: ScopeLike = ALL_ORGS) -> list[SkillSummary]:
    """Every skill with executions in the window or ratings or installs, most executed first."""
    org = as_scope(org)
    executions = _execution_figures(window, org)
    skill_ids = set(executions)
    skill_ids.update(org.filter(SkillRating.objects.all()).values_list("skill_id", flat=True).distinct())
    skill_ids.update(org.filter(SkillInstall.objects.all()).values_list("skill_id", flat=True).distinct())
    summaries = _summaries(sorted(skill_ids), window, org, executions)
    return sorted(summaries, key=lambda summary: -summary.execution_count)


def skill_trend(skill_id: str, window: Window, interval: TrendInterval, *,
                org: ScopeLike = ALL_ORGS) -> SkillTrend | None:
    """Per hour or day: executions, success rate and p95 latency (ms); empty buckets have 0 and nulls.

    None when nothing was ever recorded about the skill (in the org).
    """
    if not skill_has_data(skill_id, org=org):
        return None
    step = TREND_INTERVALS[interval]
    tags = {"skill_id": skill_id}
    executions = query.time_series(EXECUTIONS_METRIC, window, interval=step, aggregate="sum", org=org, tags=tags)
    successes = query.time_series(EXECUTIONS_METRIC, window, interval=step, aggregate="sum", org=org,
                                  tags={**tags, "success": "true"})
    p95 = query.time_series(LATENCY_METRIC, window, interval=step, aggregate="p95", org=org, tags=tags)
    points = []
    for (moment, total), (_, succeeded), (_, latency) in zip(executions.points, successes.points, p95.points,
                                                             strict=True):
        total = round(total or 0)
        points.append(TrendPoint(
            timestamp=moment,
            executions=total,
            success_rate=(succeeded or 0) / total if total else None,
            p95_latency_ms=latency,
        ))
    return SkillTrend(skill_id=skill_id, interval=interval, start=window.start, end=window.end,
                      source=executions.source, points=points)


def usage_leaderboard(window: Window, *, org: ScopeLike = ALL_ORGS, limit: int = 10) -> list[dict]:
    """The most executed skills in the window, computed now (services.leaderboards caches the 30-day board)."""
    counts = _execution_counts(window, org)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1]["execution_count"], pair[0]))[:limit]
    return [
        {"rank": rank, "skill_id": skill_id, "score": figures["execution_count"], **figures}
        for rank, (skill_id, figures) in enumerate(ranked, start=1)
    ]


def skill_statistics(skill_ids: list[str], window: Window, *, org: ScopeLike = ALL_ORGS) -> dict[str, dict]:
    """Counts, success rate and latency per skill over the window, for the given skills (one page of them)."""
    figures = _execution_figures(window, org, skill_ids[0] if len(skill_ids) == 1 else None)
    return {skill_id: figures[skill_id] for skill_id in skill_ids if skill_id in figures}
