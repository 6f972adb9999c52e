"""Rules, metric events and moments for the alerting tests (controlled time: nothing sleeps)."""

from datetime import UTC, datetime, timedelta

from alerts.models import AlertRule
from alerts.services.evaluation import evaluate_rules
from analytics.models import Organization
from analytics.platform.scope import PLATFORM
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(seconds: float = 0, *, minutes: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds, minutes=minutes)


def org(slug: str = "acme") -> Organization:
    return Organization.get_or_create_by_slug(slug)


def record(organization, name: str, value: float, moment: datetime, **tags) -> None:
    """``organization`` None: the platform's own rows (which platform rules read, with every org's)."""
    scope = PLATFORM if organization is None else organization
    ingest_metric_items(scope, [MetricItem(name, float(value), "gauge", "", "", tags, moment)])


def make_rule(organization=None, **fields) -> AlertRule:
    defaults = {"name": f"rule {AlertRule.objects.count() + 1}", "metric_name": "cpu.usage",
                "condition_operator": "gt", "threshold": 80.0, "window_seconds": 300}
    return AlertRule.objects.create(org=organization, **{**defaults, **fields})


def evaluate(moment: datetime, *rules):
    """One pass at ``moment`` over these rules (all enabled rules when none are named)."""
    if rules:
        return evaluate_rules(moment, rules=AlertRule.objects.filter(pk__in=[rule.pk for rule in rules]))
    return evaluate_rules(moment)


def state_of(rule, **group):
    from alerts.models import group_key

    return rule.group_states.get(group_key=group_key(group))
