"""Analytics' part of /metrics and of the server's OTLP push: what the store holds, read at scrape time.

Every web worker reads the same rows, so every worker answers a scrape with the same values (docs/exporters.md).
Counters come from ``SkillExecutionTotals`` (kept in the ingest transaction, never lowered by retention);
gauges from the current ratings, installs, computed health scores, the newest computed day of the platform
analytics and the rollup state.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, OuterRef, Subquery

from analytics import metric_families as families
from analytics.metric_families import Exposed, Sample
from analytics.models import (
    MetricSeries,
    Organization,
    PeriodType,
    PlatformMetrics,
    RollupState,
    RollupTier,
    Skill,
    SkillExecutionTotals,
    SkillInstall,
    SkillRating,
)
from analytics.services.health_score import health_scores
from analytics.services.health_snapshots import current_health_scores, newest_snapshot_as_of

PLATFORM_LABEL = "platform"  # the org_id label of rows that belong to no org

def _org_slugs() -> dict[int, str]:
    return dict(Organization.objects.values_list("pk", "slug"))


def _skill_families(slugs: dict[int, str]) -> list[Exposed]:
    executions = Exposed(families.SKILL_EXECUTIONS)
    successes = Exposed(families.SKILL_SUCCESSES, rank_by=families.SKILL_EXECUTIONS)
    failures = Exposed(families.SKILL_FAILURES, rank_by=families.SKILL_EXECUTIONS)
    latency = Exposed(families.SKILL_LATENCY, rank_by=families.SKILL_EXECUTIONS)
    for row in SkillExecutionTotals.objects.order_by("org_id", "skill_id").iterator():
        labels = (str(row.skill_id), slugs[row.org_id])
        executions.samples.append(Sample(labels, row.executions))
        successes.samples.append(Sample(labels, row.successes))
        failures.samples.append(Sample(labels, row.executions - row.successes))
        latency.samples.append(Sample(labels, buckets=tuple(row.latency_buckets), total=row.latency_sum_ms))
    return [executions, successes, failures, latency]


def _rating_families(slugs: dict[int, str]) -> list[Exposed]:
    rating = Exposed(families.SKILL_RATING, rank_by=families.SKILL_RATINGS)
    ratings = Exposed(families.SKILL_RATINGS)
    current = (SkillRating.objects.filter(replaced_at__isnull=True).values("skill_id", "org_id")
               .annotate(average=Avg("rating"), count=Count("id")).order_by("org_id", "skill_id"))
    for row in current:
        labels = (str(row["skill_id"]), slugs[row["org_id"]])
        rating.samples.append(Sample(labels, row["average"]))
        ratings.samples.append(Sample(labels, row["count"]))
    installs = Exposed(families.SKILL_INSTALLS)
    for install in SkillInstall.objects.values("skill_id", "org_id").annotate(count=Count("id")).order_by():
        installs.samples.append(Sample((str(install["skill_id"]), slugs[install["org_id"]]), install["count"]))
    return [rating, ratings, installs]


_health_cache: dict[str, Any] = {"key": None, "scores": []}
_health_lock = threading.Lock()


def _computed_health(now: datetime, slugs: dict[int, str]) -> list[Sample]:
    """Each skill's health score (explicit, else computed) in each org that executed it.

    As of the health snapshot job's last run while it is fresh: its rows are read, and what it lacks is
    computed as of the same moment. Without a fresh snapshot (no scheduler running), computed as of the start
    of the current PROMETHEUS_HEALTH_SCORE_SECONDS period (0: at every scrape). Either way every worker
    reports the scores of the same moment, so they agree, and works them out once for that moment.
    """
    period = settings.PROMETHEUS_HEALTH_SCORE_SECONDS
    snapshot_as_of = newest_snapshot_as_of(now)
    as_of = snapshot_as_of or (datetime.fromtimestamp(now.timestamp() // period * period, UTC) if period else now)
    scores_of = current_health_scores if snapshot_as_of else health_scores  # a stale snapshot is not read
    key = (snapshot_as_of is not None, as_of)
    with _health_lock:
        if period and _health_cache["key"] == key:
            return list(_health_cache["scores"])
    skills_by_org: dict[int, list[str]] = {}
    for org_id, skill in SkillExecutionTotals.objects.values_list("org_id", "skill_id").order_by("skill_id"):
        skills_by_org.setdefault(org_id, []).append(str(skill))
    organizations = Organization.objects.in_bulk(list(skills_by_org))
    scores = []
    for org_id, skill_ids in sorted(skills_by_org.items()):
        for skill_id, health in scores_of(skill_ids, org=organizations[org_id], now=as_of).items():
            if health.score is not None:
                scores.append(Sample((skill_id, slugs[org_id]), round(health.score, 2)))
    with _health_lock:
        _health_cache.update(key=key, scores=scores)
    return scores


def _platform_families(slugs: dict[int, str]) -> list[Exposed]:
    """The newest computed day of each org's platform analytics (docs/activity.md)."""
    exposed = {name: Exposed(family) for name, family in (
        ("users_total", families.PLATFORM_USERS), ("users_active", families.PLATFORM_ACTIVE_USERS),
        ("users_new", families.PLATFORM_NEW_USERS), ("agents_total", families.PLATFORM_AGENTS),
        ("agents_active", families.PLATFORM_ACTIVE_AGENTS))}
    days = PlatformMetrics.objects.filter(period_type=PeriodType.DAY)
    newest = days.filter(org=OuterRef("org")).order_by("-period_start").values("pk")[:1]
    for row in days.filter(pk=Subquery(newest)).values("org_id", *exposed):
        for field, family in exposed.items():
            family.samples.append(Sample((slugs[row["org_id"]],), row[field]))
    return list(exposed.values())


def _store_families(now: datetime, slugs: dict[int, str]) -> list[Exposed]:
    lag = Exposed(families.ROLLUP_LAG)
    built = dict(RollupState.objects.values_list("tier", "built_until"))
    for tier in RollupTier:
        until = built.get(tier.value)
        lag.samples.append(Sample((tier.name.lower(),), max(0.0, (now - until).total_seconds()) if until else 0.0))
    series = Exposed(families.METRIC_SERIES)
    for row in MetricSeries.objects.values("org_id").annotate(count=Count("id")).order_by("org_id"):
        label = PLATFORM_LABEL if row["org_id"] is None else slugs[row["org_id"]]
        series.samples.append(Sample((label,), row["count"]))
    deprecated = Exposed(families.SKILL_DEPRECATED)
    for skill_id, is_deprecated in Skill.objects.values_list("skill_id", "deprecated"):
        deprecated.samples.append(Sample((skill_id,), float(is_deprecated)))
    return [lag, series, deprecated]


def exposed_families(now: datetime) -> list[Exposed]:
    slugs = _org_slugs()
    return [
        *_skill_families(slugs),
        *_rating_families(slugs),
        Exposed(families.SKILL_HEALTH_SCORE, _computed_health(now, slugs)),
        *_platform_families(slugs),
        *_store_families(now, slugs),
    ]

