"""A skill's health, 0-100: the formula of docs/health-score.md.

    health_scores(skill_ids, *, org=ALL_ORGS, now=None) -> {skill_id: Health}   (a fixed number of queries)
    health_score(skill_id, *, org=ALL_ORGS, now=None) -> Health

Execution figures come from the metrics query layer (``skill.executions`` and
``skill.latency_ms``), like every other skill figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, OuterRef, Subquery, Sum
from django.utils import timezone

from analytics.models import SkillExecution, SkillHealthScore, SkillRating
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC, NEUTRAL_RATING
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.windows import Window, isoformat
from analytics.services import metrics_query as query

RECENT = timedelta(days=7)
BASELINE = timedelta(days=30)  # the 30 days before the recent week
WEIGHTS = {"success": 0.50, "latency": 0.20, "rating": 0.15, "volume": 0.15}
SUCCESS_FLOOR = 0.5  # a success rate at or below this scores 0: failing half the time is not "half healthy"
# Bayesian priors: what a skill with little data is assumed to be until its own data outweighs them.
SUCCESS_PRIOR_RATE, SUCCESS_PRIOR_WEIGHT = 0.9, 10  # as if 10 earlier executions had succeeded 90% of the time
# The rating component: as if 5 earlier users had rated it 3 stars (docs/health-score.md, Rating). Not the
# rating board's prior of 10 ratings (docs/leaderboards.md): two documented figures, deliberately separate.
HEALTH_RATING_PRIOR_MEAN, HEALTH_RATING_PRIOR_WEIGHT = NEUTRAL_RATING, 5
MIN_LATENCY_SAMPLES = 10  # successful executions needed in the recent week and in the baseline
VOLUME_TARGET = 100  # successful executions in the recent week that earn the full volume score


@dataclass
class Health:
    skill_id: str
    score: float | None  # what is reported: the explicit score while in effect, else the computed one
    computed: float | None
    components: dict = field(default_factory=dict)


def _windows(now: datetime) -> tuple[Window, Window]:
    recent = Window(now - RECENT, now)
    # Windows include both ends: stop the baseline just before the recent week starts.
    baseline = Window(recent.start - BASELINE, recent.start - timedelta(microseconds=1))
    return recent, baseline


def _success_component(successes: int, executions: int) -> dict:
    smoothed = (successes + SUCCESS_PRIOR_RATE * SUCCESS_PRIOR_WEIGHT) / (executions + SUCCESS_PRIOR_WEIGHT)
    return {"score": 100 * max(0.0, (smoothed - SUCCESS_FLOOR) / (1 - SUCCESS_FLOOR)), "executions": executions,
            "successes": successes, "success_rate": successes / executions if executions else None}


def _latency_component(recent: query.Stats | None, baseline: query.Stats | None) -> dict:
    recent_p95 = recent.p95 if recent else None
    baseline_p95 = baseline.p95 if baseline else None
    samples = recent.count if recent else 0
    baseline_samples = baseline.count if baseline else 0
    body = {"p95_ms": recent_p95, "baseline_p95_ms": baseline_p95, "samples": samples,
            "baseline_samples": baseline_samples}
    # (A p95 is None only for a window without samples.)
    if (samples < MIN_LATENCY_SAMPLES or baseline_samples < MIN_LATENCY_SAMPLES
            or recent_p95 is None or baseline_p95 is None):
        return {"score": None, **body, "note": f"needs {MIN_LATENCY_SAMPLES} successful executions in the recent "
                                               "week and in the 30-day baseline"}
    # A baseline under 1 ms is taken as 1 ms, so that a near-zero baseline cannot divide by zero.
    ratio = recent_p95 / max(baseline_p95, 1.0)
    return {"score": 100 * min(1.0, 1 / ratio) if ratio > 0 else 100.0, **body}


def _rating_component(total: int, count: int) -> dict:
    average = (HEALTH_RATING_PRIOR_MEAN * HEALTH_RATING_PRIOR_WEIGHT + total) / (HEALTH_RATING_PRIOR_WEIGHT + count)
    return {"score": 100 * (average - 1) / 4, "bayesian_average": average, "rating_count": count}


def _volume_component(successes: int) -> dict:
    return {"score": 100 * min(1.0, math.log1p(successes) / math.log1p(VOLUME_TARGET)),
            "successful_executions": successes}


def _combine(components: dict[str, dict]) -> float:
    present = {name: part for name, part in components.items() if part["score"] is not None}
    total_weight = sum(WEIGHTS[name] for name in present)
    score = round(sum(WEIGHTS[name] * part["score"] for name, part in present.items()) / total_weight, 1)
    for name, part in components.items():
        part["weight"] = WEIGHTS[name] / total_weight if name in present else 0.0
        if part["score"] is not None:
            part["score"] = round(part["score"], 2)  # for display only: the score above is rounded once
    return score


def _by_skill(stats: list[query.GroupStats]) -> dict[str | None, query.GroupStats]:
    return {group.tags["skill_id"]: group for group in stats}


def _explicit_scores(skill_ids: list[str], scope: Scope) -> dict[str, SkillHealthScore]:
    scores = scope.filter(SkillHealthScore.objects.filter(skill_id__in=skill_ids))
    newest = scores.filter(skill_id=OuterRef("skill_id")).order_by("-recorded_at", "-id").values("pk")[:1]
    return {row.skill_id: row for row in scores.filter(pk=Subquery(newest))}


def _superseded(explicit: dict[str, SkillHealthScore], scope: Scope) -> set[str]:
    """The skills with newer data than their explicit score: an execution or a rating timed after it was set.

    Two queries whatever the number of skills (the admin's list asks for a page of them).
    """
    if not explicit:
        return set()
    since = min(score.recorded_at for score in explicit.values())
    newest: dict[str, datetime] = {}
    for model, time_field in ((SkillExecution, "timestamp"), (SkillRating, "rated_at")):
        rows = scope.filter(model.objects.filter(skill_id__in=list(explicit), **{f"{time_field}__gt": since}))
        for row in rows.values("skill_id").annotate(last=Max(time_field)).order_by():
            newest[row["skill_id"]] = max(row["last"], newest.get(row["skill_id"], row["last"]))
    return {skill_id for skill_id, score in explicit.items()
            if skill_id in newest and newest[skill_id] > score.recorded_at}


def computed_parts(skill_ids: list[str], org: Scope, now: datetime) -> dict[str, tuple[float | None, dict]]:
    """{skill_id: (computed score, components)} from the data as of ``now``: the formula without the explicit
    scores (``with_explicit`` applies them). Components are those of ``Health`` before ``computed_score``."""
    recent, baseline = _windows(now)
    tags = {"skill_id": skill_ids[0]} if len(skill_ids) == 1 else {}
    executions: dict[str | None, dict[str | None, int]] = {}  # {skill_id: {success tag: count}}
    for group in query.grouped_statistics(EXECUTIONS_METRIC, recent, ["skill_id", "success"], org=org, tags=tags,
                                          with_percentiles=False):
        counts = executions.setdefault(group.tags["skill_id"], {"true": 0, "false": 0})
        counts[group.tags["success"]] = counts.get(group.tags["success"], 0) + round(group.sum or 0)
    # Latency of successful executions only: failures often fail fast and would make a failing skill look quick.
    succeeded = {**tags, "success": "true"}
    recent_latency = _by_skill(query.grouped_statistics(LATENCY_METRIC, recent, ["skill_id"], org=org, tags=succeeded))
    baseline_latency = _by_skill(
        query.grouped_statistics(LATENCY_METRIC, baseline, ["skill_id"], org=org, tags=succeeded)
    )
    ratings = org.filter(SkillRating.objects.filter(replaced_at__isnull=True, skill_id__in=skill_ids))
    rating_totals = {row["skill_id"]: (row["total"], row["count"]) for row in
                     ratings.values("skill_id").annotate(total=Sum("rating"), count=Count("id")).order_by()}
    parts: dict[str, tuple[float | None, dict]] = {}
    for skill_id in skill_ids:
        counts = executions.get(skill_id, {})
        successes, total = counts.get("true", 0), sum(counts.values())
        computed, components = None, {}
        if total:
            components = {
                "success": _success_component(successes, total),
                "latency": _latency_component(recent_latency.get(skill_id), baseline_latency.get(skill_id)),
                "rating": _rating_component(*rating_totals.get(skill_id, (0, 0))),
                "volume": _volume_component(successes),
            }
            computed = _combine(components)
        parts[skill_id] = (computed, components)
    return parts


def with_explicit(computed: dict[str, tuple[float | None, dict, datetime]], org: Scope) -> dict[str, Health]:
    """Each skill's ``Health`` from its (computed score, components, as of) and its explicit score, if any:
    in effect until newer data supersedes it."""
    explicit_scores = _explicit_scores(list(computed), org)
    superseded = _superseded(explicit_scores, org)
    results = {}
    for skill_id, (score, components, as_of) in computed.items():
        explicit = explicit_scores.get(skill_id)
        in_effect = explicit is not None and skill_id not in superseded
        results[skill_id] = Health(
            skill_id=skill_id,
            score=explicit.score if explicit is not None and in_effect else score,
            computed=score,
            components={
                **components,
                "computed_score": score,
                "explicit": None if explicit is None else {
                    "score": explicit.score, "source": explicit.source, "recorded_at": isoformat(explicit.recorded_at),
                    "in_effect": in_effect,
                },
                "as_of": isoformat(as_of),
            },
        )
    return results


def health_scores(skill_ids: list[str], *, org: ScopeLike = ALL_ORGS,
                  now: datetime | None = None) -> dict[str, Health]:
    if not skill_ids:
        return {}
    org = as_scope(org)
    now = now or timezone.now()
    return with_explicit({skill_id: (score, components, now) for skill_id, (score, components)
                          in computed_parts(skill_ids, org, now).items()}, org)


def health_score(skill_id: str, *, org: ScopeLike = ALL_ORGS, now: datetime | None = None) -> Health:
    return health_scores([skill_id], org=org, now=now)[skill_id]
