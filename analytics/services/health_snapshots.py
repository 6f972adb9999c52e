"""Health scores computed ahead by the scheduler, for the pages that show many at once.

    compute_health_snapshots(now=None) -> {"scopes": n, "rows": n}   (the job, every SNAPSHOT_INTERVAL)
    current_health_scores(skill_ids, *, org=ALL_ORGS, now=None) -> {skill_id: Health}
    newest_snapshot_as_of(now) -> datetime | None   (the moment the job's last fresh snapshot describes)

A score describes the recent week ending at its ``as_of`` (docs/health-score.md): over months of executions
the formula reads a few thousand rollup rows per scope, a few hundred milliseconds, so the dashboards read
the job's snapshot instead, as they read the leaderboards' cache. What the snapshot lacks (a skill added since,
a scope the job has not stored, a snapshot older than SNAPSHOT_MAX_AGE) is computed on read. Explicit scores
are applied on read, so one set a moment ago is in effect at once.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from analytics.models import Skill, SkillHealthSnapshot
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.services.health_score import Health, computed_parts, health_scores, with_explicit
from analytics.services.leaderboards import cache_org, orgs_with_skill_data

logger = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = timedelta(minutes=1)  # analytics/schedule.py runs the job this often
SNAPSHOT_MAX_AGE = 2 * SNAPSHOT_INTERVAL  # an older snapshot is stale: one missed run is tolerated


def store_snapshot(scope: Scope, parts: dict[str, tuple[float | None, dict]], as_of: datetime) -> int:
    """Replace the scope's snapshot in one transaction. Returns the rows written."""
    org = cache_org(scope)
    rows = [SkillHealthSnapshot(org=org, skill_id=skill_id, computed=score, components=components, as_of=as_of)
            for skill_id, (score, components) in parts.items()]
    with transaction.atomic():
        SkillHealthSnapshot.objects.filter(org=org).delete()
        SkillHealthSnapshot.objects.bulk_create(rows)
    return len(rows)


def compute_health_snapshots(now: datetime | None = None) -> dict[str, int]:
    """The health of every catalogue skill over all orgs and in each org with skill data, as of ``now``."""
    now = now or timezone.now()
    started = time.monotonic()
    catalogue = Skill.catalogue_ids()
    orgs = orgs_with_skill_data()
    rows = 0
    for scope in [ALL_ORGS, *(Scope.of(org) for org in orgs)]:
        parts = computed_parts(catalogue, scope, now) if catalogue else {}
        try:
            rows += store_snapshot(scope, parts, now)
        except IntegrityError:  # another run stored this scope between our delete and insert: keep its rows
            logger.warning("compute_health_snapshots: %s left as another run stored it", scope)
    # Orgs that no longer have skill data keep no snapshot.
    SkillHealthSnapshot.objects.filter(org__isnull=False).exclude(org__in=orgs).delete()
    result = {"scopes": len(orgs) + 1, "rows": rows}
    logger.info("compute_health_snapshots: %(scopes)d scopes, %(rows)d rows in %(seconds).2fs",
                {**result, "seconds": time.monotonic() - started})
    return result


def current_health_scores(skill_ids: list[str], *, org: ScopeLike = ALL_ORGS,
                          now: datetime | None = None) -> dict[str, Health]:
    """Each skill's health as of the scope's snapshot, or computed now where the snapshot has none that is
    fresh; explicit scores applied as ``health_scores`` applies them."""
    scope = as_scope(org)
    if not skill_ids:
        return {}
    if scope.is_platform:  # no snapshot of the platform scope: computed now
        return health_scores(skill_ids, org=scope, now=now)
    now = now or timezone.now()
    fresh = SkillHealthSnapshot.objects.filter(org=cache_org(scope), skill_id__in=skill_ids,
                                               as_of__gte=now - SNAPSHOT_MAX_AGE, as_of__lte=now)
    computed = {row.skill_id: (row.computed, row.components, row.as_of) for row in fresh}
    missing = [skill_id for skill_id in skill_ids if skill_id not in computed]
    if missing:
        computed.update({skill_id: (score, components, now) for skill_id, (score, components)
                         in computed_parts(missing, scope, now).items()})
    return with_explicit({skill_id: computed[skill_id] for skill_id in skill_ids}, scope)


def newest_snapshot_as_of(now: datetime) -> datetime | None:
    """The moment the job's newest snapshot describes, if it is fresh at ``now`` (within SNAPSHOT_MAX_AGE).

    Every scope of one run is stored as of the same moment, so this names the run whose rows are read.
    """
    newest = SkillHealthSnapshot.objects.filter(as_of__lte=now).aggregate(newest=Max("as_of"))["newest"]
    return newest if newest is not None and newest >= now - SNAPSHOT_MAX_AGE else None
