"""Changing and deleting rules (admin and API alike).

    rule_changed(rule, previous, *, actor, now=None) -> int     (after the rule was saved)
    delete_rule(rule, *, actor, now=None) -> int

When what a rule watches changes (metric, aggregation, window, tag filters, group_by), or the rule
is disabled or deleted, its unresolved incidents are resolved with a note and its group states
forgotten: a group firing under the old definition says nothing about the new one. A changed
condition (operator, threshold, durations) keeps the state: the next pass judges it by the new one.
Incidents outlive their rule (``rule`` becomes null; ``rule_name`` stays).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from alerts.models import AlertRule
from alerts.services.incidents import resolve_for_rule_change

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
