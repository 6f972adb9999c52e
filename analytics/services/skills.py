"""Skill analytics: recording executions, ratings and installs, and the figures read back.

    validate_execution_item(item, errors, now, *, org_slug=None) -> ExecutionItem
    validate_rating_item(item, errors, now, *, org_slug=None) -> RatingItem
    validate_install_item(item, errors, now, *, org_slug=None) -> InstallItem
    record_executions(org, items) / record_ratings(org, items) / record_installs(org, items) -> IngestResult
    set_health_score(org, skill_id, score, *, source="manual") -> SkillHealthScore
    skill_has_data(skill_id, *, org=ALL_ORGS) -> bool
    skill_summary(skill_id, window, *, org=ALL_ORGS) -> dict          (the body of GET skills/{id})
    skill_summaries(window, *, org=ALL_ORGS) -> list[dict]
    skill_trend(skill_id, window, interval, *, org=ALL_ORGS) -> dict  (the body of GET skills/{id}/trend)
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
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Avg, Count, Q
from django.utils import timezone

from analytics.models import (
    MetricType,
    Organization,
    Skill,
    SkillExecution,
    SkillHealthScore,
    SkillInstall,
    SkillRating,
)
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC, RESERVED_SKILL_IDS, SKILL_ID_MAX_LENGTH
from analytics.platform.windows import Window, isoformat
from analytics.services import metrics_query as query
from analytics.services import validation as check
from analytics.services.bulk_insert import insert_rows
from analytics.services.health_score import health_scores
from analytics.services.metrics_ingest import (
    INSERT_CHUNK,
    IngestResult,
    MetricItem,
    drop_duplicates,
    ingest_metric_items,
)

ALL_ORGS = query.ALL_ORGS
EXECUTION_COLUMNS = ["skill_id", "org_id", "user_id", "success", "latency_ms", "error_type", "skill_version",
                     "timestamp", "event_id"]
TREND_INTERVALS = {"hour": "1h", "day": "1d"}
USER_ID_MAX_LENGTH = 200


# --- Items ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionItem:
    skill_id: str
    success: bool
    latency_ms: float
    timestamp: datetime
    user_id: str | None = None
    error_type: str = ""
    skill_version: str = ""
    event_id: str | None = None


@dataclass(frozen=True)
class RatingItem:
    skill_id: str
    rating: int
    timestamp: datetime
    user_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class InstallItem:
    skill_id: str
    timestamp: datetime
    user_id: str | None = None
    event_id: str | None = None


# --- Validation (shared by the API and the in-process client) --------------------------


def check_skill_id(item: dict, errors: check.ItemErrors) -> str:
    value = check.text(item, "skill_id", errors, max_length=SKILL_ID_MAX_LENGTH, required=True)
    if "skill_id" in errors:
        return value
    if value in RESERVED_SKILL_IDS:
        errors.add("skill_id", f"{value!r} is a reserved word of the skills API and cannot be a skill id.")
    elif "/" in value or any(character.isspace() for character in value):
        errors.add("skill_id", "Must not contain '/' or whitespace.")
    return value


def _user_id(item: dict, errors: check.ItemErrors) -> str | None:
    return check.text(item, "user_id", errors, max_length=USER_ID_MAX_LENGTH) or None


def _check_org_id(item: dict, errors: check.ItemErrors, org_slug: str | None) -> None:
    """An item may name its org; it must be the one the request writes to (API.md, Org)."""
    value = item.get("org_id")
    if value in (None, "") or org_slug is None:
        return
    if value != org_slug:
        errors.add("org_id", f"Must be this token's organisation {org_slug!r}.")


def validate_execution_item(item: dict, errors: check.ItemErrors, now: datetime, *,
                            org_slug: str | None = None) -> ExecutionItem:
    _check_org_id(item, errors, org_slug)
    return ExecutionItem(
        skill_id=check_skill_id(item, errors),
        success=check.boolean(item, "success", errors),
        latency_ms=check.number(item, "latency_ms", errors, minimum=0),
        timestamp=check.timestamp(item, errors, now),
        user_id=_user_id(item, errors),
        error_type=check.text(item, "error_type", errors, max_length=200),
        skill_version=check.text(item, "skill_version", errors, max_length=64),
        event_id=check.event_id(item, errors),
    )


def validate_rating_item(item: dict, errors: check.ItemErrors, now: datetime, *,
                         org_slug: str | None = None) -> RatingItem:
    _check_org_id(item, errors, org_slug)
    rating = item.get("rating")
    if rating is None:
        errors.add("rating", "This field is required.")
    elif isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        errors.add("rating", "Must be an integer from 1 to 5.")
    return RatingItem(
        skill_id=check_skill_id(item, errors),
        rating=rating,
        timestamp=check.timestamp(item, errors, now),
        user_id=_user_id(item, errors),
        event_id=check.event_id(item, errors),
    )


def validate_install_item(item: dict, errors: check.ItemErrors, now: datetime, *,
                          org_slug: str | None = None) -> InstallItem:
    _check_org_id(item, errors, org_slug)
    return InstallItem(
        skill_id=check_skill_id(item, errors),
        timestamp=check.timestamp(item, errors, now),
        user_id=_user_id(item, errors),
        event_id=check.event_id(item, errors),
    )


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


def _note_activity(items: list) -> None:
    """Move each skill's last_recorded_at (and, from executions, its version) forward, never back."""
    newest: dict[str, object] = {}
    for item in items:
        if item.skill_id not in newest or item.timestamp >= newest[item.skill_id].timestamp:
            newest[item.skill_id] = item
    for skill_id, item in newest.items():
        changes = {"last_recorded_at": item.timestamp}
        if getattr(item, "skill_version", ""):
            changes["version"] = item.skill_version
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
    current: dict[tuple[str, str], SkillRating] = {}
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
    """Set a skill's health explicitly; in effect until newer data supersedes it (docs/health-score.md)."""
    errors = check.ItemErrors()
    skill_id = check_skill_id({"skill_id": skill_id}, errors)
    value = check.number({"score": score}, "score", errors, minimum=0)
    if value is not None and value > 100:
        errors.add("score", "Must be at most 100.")
    if errors:
        raise ValueError(format_errors(errors))
    _ensure_skills({skill_id})
    return SkillHealthScore.objects.create(skill_id=skill_id, org=org, score=value, source=source,
                                           recorded_at=recorded_at or timezone.now())


def format_errors(errors: dict) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())


# --- Reading ---------------------------------------------------------------------------


def _scoped(queryset, org):
    return queryset if org is ALL_ORGS else queryset.filter(org=org)


def skill_has_data(skill_id: str, *, org=ALL_ORGS) -> bool:
    """Whether anything was recorded about the skill (in the org)."""
    return any(
        _scoped(model.objects.filter(skill_id=skill_id), org).exists()
        for model in (SkillExecution, SkillRating, SkillInstall, SkillHealthScore)
    )


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
        skill = counts[group.tags["skill_id"]]
        skill["execution_count"] += executions
        if group.tags["success"] == "true":
            skill["success_count"] += executions
    for skill in counts.values():
        skill["failure_count"] = skill["execution_count"] - skill["success_count"]
        skill["success_rate"] = skill["success_count"] / skill["execution_count"] if skill["execution_count"] else None
    return dict(counts)


def execution_counts(window: Window, *, org=ALL_ORGS) -> dict[str, dict]:
    """Per skill with executions in the window: execution_count, success_count, failure_count, success_rate."""
    return _execution_counts(window, org)


def _execution_figures(window: Window, org, skill_id: str | None = None) -> dict[str, dict]:
    """Counts as above plus latency average and percentiles (ms) per skill."""
    tags = {"skill_id": skill_id} if skill_id else None
    figures = _execution_counts(window, org, tags)
    for group in query.grouped_statistics(LATENCY_METRIC, window, ["skill_id"], org=org, tags=tags):
        figures.setdefault(group.tags["skill_id"], dict(EMPTY_EXECUTIONS)).update(
            avg_latency_ms=group.avg, p50_latency_ms=group.p50, p95_latency_ms=group.p95, p99_latency_ms=group.p99,
        )
    return figures


def rating_figures(skill_ids=None, *, org=ALL_ORGS) -> dict[str, dict]:
    """All-time current ratings per skill: average and count."""
    rows = _scoped(SkillRating.objects.filter(replaced_at__isnull=True), org)
    if skill_ids is not None:
        rows = rows.filter(skill_id__in=skill_ids)
    return {
        row["skill_id"]: {"rating_avg": row["avg"], "rating_count": row["count"]}
        for row in rows.values("skill_id").annotate(avg=Avg("rating"), count=Count("id")).order_by()
    }


def _install_counts(skill_ids=None, *, org=ALL_ORGS) -> dict[str, int]:
    rows = _scoped(SkillInstall.objects.all(), org)
    if skill_ids is not None:
        rows = rows.filter(skill_id__in=skill_ids)
    return dict(rows.values("skill_id").annotate(count=Count("id")).order_by().values_list("skill_id", "count"))




def _summaries(skill_ids: list[str], window: Window, org, executions: dict[str, dict]) -> list[dict]:
    ratings = rating_figures(skill_ids, org=org)
    installs = _install_counts(skill_ids, org=org)
    health = health_scores(skill_ids, org=org)
    summaries = []
    for skill_id in skill_ids:
        rating = ratings.get(skill_id, {"rating_avg": None, "rating_count": 0})
        summaries.append({
            "skill_id": skill_id,
            **EMPTY_EXECUTIONS, **executions.get(skill_id, {}),
            **rating,
            "install_count": installs.get(skill_id, 0),
            "health_score": health[skill_id].score,
            "health_components": health[skill_id].components,
            "start": isoformat(window.start), "end": isoformat(window.end),
        })
    return summaries


def skill_summary(skill_id: str, window: Window, *, org=ALL_ORGS) -> dict | None:
    """Executions in the window, all-time ratings and installs, and the health score now.

    None when nothing was ever recorded about the skill (in the org).
    """
    if not skill_has_data(skill_id, org=org):
        return None
    return _summaries([skill_id], window, org, _execution_figures(window, org, skill_id))[0]


def skill_summaries(window: Window, *, org=ALL_ORGS) -> list[dict]:
    """Every skill with executions in the window or ratings or installs, most executed first."""
    executions = _execution_figures(window, org)
    skill_ids = set(executions)
    skill_ids.update(_scoped(SkillRating.objects.all(), org).values_list("skill_id", flat=True).distinct())
    skill_ids.update(_scoped(SkillInstall.objects.all(), org).values_list("skill_id", flat=True).distinct())
    summaries = _summaries(sorted(skill_ids), window, org, executions)
    return sorted(summaries, key=lambda summary: -summary["execution_count"])


def skill_trend(skill_id: str, window: Window, interval: str, *, org=ALL_ORGS) -> dict | None:
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
        points.append({
            "timestamp": isoformat(moment),
            "executions": total,
            "success_rate": (succeeded or 0) / total if total else None,
            "p95_latency_ms": latency,
        })
    return {"skill_id": skill_id, "interval": interval, **window.as_dict(), "source": executions.source,
            "points": points}


def usage_leaderboard(window: Window, *, org=ALL_ORGS, limit: int = 10) -> list[dict]:
    """The most executed skills in the window, computed now (services.leaderboards caches the 30-day board)."""
    counts = _execution_counts(window, org)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1]["execution_count"], pair[0]))[:limit]
    return [
        {"rank": rank, "skill_id": skill_id, "score": figures["execution_count"], **figures}
        for rank, (skill_id, figures) in enumerate(ranked, start=1)
    ]


def skill_statistics(skill_ids: list[str], window: Window, *, org=ALL_ORGS) -> dict[str, dict]:
    """Counts, success rate and latency per skill over the window, for the given skills (one page of them)."""
    figures = _execution_figures(window, org, skill_ids[0] if len(skill_ids) == 1 else None)
    return {skill_id: figures[skill_id] for skill_id in skill_ids if skill_id in figures}
