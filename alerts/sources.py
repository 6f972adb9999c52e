"""Where a rule's values come from: the metrics query layer, or a built-in source.

One ``fetch`` answers every rule sharing (org, metric, window, tags, group_by): metric rules get
the full statistics of each group (all aggregations at once), built-in sources one value per group.

- a metric: ``metrics_query.grouped_statistics`` over the window;
- ``skill.success_rate`` / ``skill.p95_latency_ms``: the skill series of the same query layer
  (``skill.executions``, a counter, and ``skill.latency_ms``, a timer; API.md, Skills), over the window;
- ``skill.health_score``: ``analytics.services.health_score`` (its own recent and baseline windows);
- ``skill.version_regression``: ``analytics.services.skill_versions`` over the window: 1 when a skill's newest
  version is significantly worse than the previous one, 0 when not, no data without two versions;
- ``service.health``: each monitoring ``Service``'s current status (1 healthy, 0.5 degraded,
  0 unhealthy, no data when unknown), lowered to the worst status of the service's unclaimed
  ``ServiceTransition`` rows in the window, so that a service that was unhealthy between two
  passes is still seen. The pass claims those rows when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.models import (
    SERVICE_HEALTH,
    SKILL_HEALTH_SCORE,
    SKILL_P95_LATENCY,
    SKILL_SUCCESS_RATE,
    SKILL_VERSION_REGRESSION,
)
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.tenancy import Organization
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.skill_versions import newest_version_regressions
from monitoring.models import HEALTH_VALUES, Service, ServiceTransition


@dataclass
class GroupValue:
    group: dict
    stats: query.Stats | None = None  # metric rules: each rule picks its aggregation
    value: float | None = None  # built-in sources

    def value_for(self, aggregation: str, window: Window) -> float | None:
        if self.stats is not None:
            return query.aggregate_value(self.stats, aggregation, window)
        return self.value


def group_of(tags: dict | None, group_by: list[str]) -> dict:
    return {key: (tags or {}).get(key) for key in group_by}


def rule_scope(rule_org: Organization | None) -> Scope:
    """What a rule reads: its org's data; a platform rule (org NULL) watches every org's and the platform's."""
    return ALL_ORGS if rule_org is None else Scope.of(rule_org)


class Sources:
    """One evaluation pass's reader. ``finish()`` claims the service transitions the pass has seen."""

    def __init__(self, now: datetime):
        self.now = now
        self.seen_transitions: set[int] = set()

    def fetch(self, metric_name: str, *, org: ScopeLike, window: Window, tags: dict, group_by: list[str],
              with_percentiles: bool) -> list[GroupValue]:
        """``org``: the rule's scope (``rule_scope(rule.org)``)."""
        org = as_scope(org)
        if metric_name == SERVICE_HEALTH:
            return self._service_health(window, tags, group_by)
        if metric_name == SKILL_SUCCESS_RATE:
            return self._skill_success_rate(org, window, tags, group_by)
        if metric_name == SKILL_P95_LATENCY:
            return [GroupValue(group_of(stats.tags, group_by), value=stats.p95)
                    for stats in query.grouped_statistics(LATENCY_METRIC, window, group_by, org=org, tags=tags)]
        if metric_name == SKILL_HEALTH_SCORE:
            return self._skill_health(org, tags, group_by)
        if metric_name == SKILL_VERSION_REGRESSION:
            return self._skill_version_regression(org, window, tags, group_by)
        return [GroupValue(group_of(stats.tags, group_by), stats=stats)
                for stats in query.grouped_statistics(metric_name, window, group_by, org=org, tags=tags,
                                                      with_percentiles=with_percentiles)]

    def _skill_success_rate(self, org, window, tags, group_by) -> list[GroupValue]:
        totals: dict[tuple, list] = {}
        for stats in query.grouped_statistics(EXECUTIONS_METRIC, window, [*group_by, "success"], org=org, tags=tags,
                                              with_percentiles=False):
            key = tuple(stats.tags.get(k) for k in group_by)
            counts = totals.setdefault(key, [0.0, 0.0])
            counts[0] += stats.sum or 0  # a counter: executions are the sum of its increments
            if stats.tags.get("success") == "true":
                counts[1] += stats.sum or 0
        return [GroupValue(dict(zip(group_by, key, strict=True)), value=ok / total if total else None)
                for key, (total, ok) in totals.items()]

    def _skill_health(self, org, tags, group_by) -> list[GroupValue]:
        from analytics.services.health_score import health_scores

        if "skill_id" in tags:
            skill_ids = [tags["skill_id"]]
        else:
            skill_ids = sorted({series_tags.get("skill_id") for _, series_tags in
                                query.matching_series(EXECUTIONS_METRIC, org=org)} - {None})
        scores = health_scores(skill_ids, org=org, now=self.now)
        return [GroupValue(group_of({"skill_id": skill_id}, group_by), value=health.score)
                for skill_id, health in scores.items()]

    def _skill_version_regression(self, org, window, tags, group_by) -> list[GroupValue]:
        """Skills with fewer than two versions in the window have no data; without group_by, the worst skill."""
        skill_ids = [tags["skill_id"]] if "skill_id" in tags else None
        found = newest_version_regressions(window, org=org, skill_ids=skill_ids)
        values = {skill_id: value for skill_id, value in sorted(found.items()) if value is not None}
        if group_by:
            return [GroupValue(group_of({"skill_id": skill_id}, group_by), value=value)
                    for skill_id, value in values.items()]
        return [GroupValue({}, value=max(values.values()))] if values else []

    def _service_health(self, window, tags, group_by) -> list[GroupValue]:
        enabled = Service.objects.filter(enabled=True)
        if "service" in tags:
            enabled = enabled.filter(name=tags["service"])
        services = list(enabled)
        worst_seen: dict[int, float] = {}
        transitions = ServiceTransition.objects.filter(
            service__in=services, claimed_at__isnull=True, at__gte=window.start, at__lte=self.now,
        ).values_list("id", "service_id", "to_status")
        for transition_id, service_id, to_status in transitions:
            self.seen_transitions.add(transition_id)
            health = HEALTH_VALUES.get(to_status)
            if health is not None:
                worst_seen[service_id] = min(health, worst_seen.get(service_id, health))
        values = []
        for service in services:
            current = service.health_value(self.now)
            seen = worst_seen.get(service.pk)
            value = seen if current is None else current if seen is None else min(current, seen)
            values.append(GroupValue(group_of({"service": service.name}, group_by), value=value))
        if group_by:
            return values
        known = [v.value for v in values if v.value is not None]
        return [GroupValue({}, value=min(known))] if known else []

    def finish(self) -> int:
        """Claim the service transitions this pass has taken into account (each once, whoever claims first)."""
        claimed = 0
        for transition in ServiceTransition.objects.filter(pk__in=self.seen_transitions, claimed_at__isnull=True):
            claimed += transition.claim(self.now)
        return claimed


def window_ending(now: datetime, seconds: int) -> Window:
    return Window(now - timedelta(seconds=seconds), now)
