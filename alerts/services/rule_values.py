"""A rule's value over a span of time, as the evaluator computes it: for the charts of the admin's pages.

At each of ``steps`` moments, the same ``Sources.fetch`` an evaluation pass makes — the rule's window ending at
that moment, its tags, group_by and aggregation — and the value of one group. Reads only.
"""

from __future__ import annotations

from datetime import datetime

from alerts.models import AlertRule
from alerts.sources import Sources, group_of, rule_scope, window_ending
from analytics.services.metrics_query import PERCENTILES

DEFAULT_STEPS = 60


def rule_values(rule: AlertRule, group: dict, start: datetime, end: datetime,
                steps: int = DEFAULT_STEPS) -> list[tuple[datetime, float | None]]:
    """(moment, the group's value then, or None without data) at ``steps`` moments from start to end."""
    step = (end - start) / max(steps - 1, 1)
    wanted = group_of(group, rule.group_by)
    values = []
    for index in range(steps):
        moment = start + step * index
        window = window_ending(moment, rule.window_seconds)
        groups = Sources(moment).fetch(rule.metric_name, org=rule_scope(rule.org), window=window, tags=rule.tags,
                                       group_by=rule.group_by, with_percentiles=rule.aggregation in PERCENTILES)
        found = next((g for g in groups if g.group == wanted), None)
        values.append((moment, None if found is None else found.value_for(rule.aggregation, window)))
    return values

