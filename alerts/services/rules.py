"""Changing and deleting rules (admin and API alike).

    rule_changed(rule, previous, *, actor, now=None) -> int     (after the rule was saved)
    delete_rule(rule, *, actor, now=None) -> int
    rule_warnings(rule) -> list[str]                            (shown when a rule is saved)

When what a rule watches changes (metric, aggregation, window, tag filters, group_by), or the rule
is disabled or deleted, its unresolved incidents are resolved with a note and its group states
forgotten: a group firing under the old definition says nothing about the new one. A changed
condition (operator, threshold, durations) keeps the state: the next pass judges it by the new one.
Incidents outlive their rule (``rule`` becomes null; ``rule_name`` stays).

A rule on a metric (with its tag filters) of which no sample was ever recorded in its scope is accepted
with a warning: it may be a typo, and until samples arrive its ``no_data`` policy alone decides (with
``ok`` or ``keep`` it cannot fire).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from alerts.models import AlertRule, NoData
from alerts.services.incidents import resolve_for_rule_change
from alerts.sources import rule_scope
from analytics.services.metrics_query import series_ids

WATCHED_FIELDS = ("metric_name", "aggregation", "window_seconds", "tags", "group_by")


def rule_changed(rule: AlertRule, previous: AlertRule | None, *, actor: str, now: datetime | None = None) -> int:
    if previous is None:
        return 0
    if previous.enabled and not rule.enabled:
        return resolve_for_rule_change(rule, actor=actor, note="rule disabled", now=now)
    changed = [field for field in WATCHED_FIELDS if getattr(previous, field) != getattr(rule, field)]
    if changed:
        return resolve_for_rule_change(rule, actor=actor, note=f"rule changed: {', '.join(changed)}", now=now)
    return 0


def delete_rule(rule: AlertRule, *, actor: str, now: datetime | None = None) -> int:
    with transaction.atomic():
        resolved = resolve_for_rule_change(rule, actor=actor, note="rule deleted", now=now)
        rule.delete()
    return resolved


NO_DATA_CONSEQUENCES: dict[str, str] = {
    NoData.OK: "with no_data: ok this rule cannot fire",
    NoData.KEEP: "with no_data: keep this rule cannot fire",
    NoData.ALERTING: "with no_data: alerting this rule fires until samples arrive",
}


def rule_warnings(rule: AlertRule) -> list[str]:
    """What is odd about a rule that is still accepted: today, a metric never recorded in its scope."""
    if rule.is_built_in or series_ids(rule.metric_name, org=rule_scope(rule.org), tags=rule.tags or None):
        return []
    tags = ", ".join(f"{key}={value}" for key, value in sorted((rule.tags or {}).items()))
    metric = f"metric {rule.metric_name!r}" + (f" with tags {tags}" if tags else "")
    return [f"no samples of {metric} have been recorded yet; {NO_DATA_CONSEQUENCES[rule.no_data]}"]
