"""Alerting's part of /metrics and of the server's OTLP push: open incidents, rule states, the outbox."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db.models import Count

from alerts.models import RULE_ERROR, AlertIncident, AlertRule, GroupStatus, IncidentStatus, Severity
from alerts.notifications.models import Notification, NotificationChannel
from analytics.metric_families import Exposed, MetricFamily, Sample

INCIDENTS_OPEN = MetricFamily("toolweaver_alert_incidents_open", "Incidents not resolved (open, acknowledged or "
                              "silenced), by severity.", "gauge", ("severity",))
RULES = MetricFamily("toolweaver_alert_rules", "Enabled alert rules by state.", "gauge", ("state",))
NOTIFICATIONS_PENDING = MetricFamily("toolweaver_notifications_pending", "Notifications waiting to be sent.",
                                     "gauge", ("channel_type",))
NOTIFICATIONS_FAILED = MetricFamily("toolweaver_notifications_failed",
                                    "Notifications that failed for good (kept until retention removes them).",
                                    "gauge", ("channel_type",))

RULE_STATES = (GroupStatus.INACTIVE.value, GroupStatus.PENDING.value, GroupStatus.FIRING.value, RULE_ERROR)


def exposed_families(now: datetime) -> list[Exposed]:
    unresolved = (AlertIncident.objects.exclude(status=IncidentStatus.RESOLVED).values("severity")
                  .annotate(count=Count("id")).order_by())
    open_by_severity = {row["severity"]: row["count"] for row in unresolved}
    incidents = Exposed(INCIDENTS_OPEN, [Sample((severity.value,), open_by_severity.get(severity.value, 0))
                                         for severity in Severity])

    rules = AlertRule.objects.filter(enabled=True).prefetch_related("group_states")
    states = Counter(rule.state() for rule in rules)
    rule_states = Exposed(RULES, [Sample((state,), states.get(state, 0)) for state in RULE_STATES])

    outbox = []
    for family, status in ((NOTIFICATIONS_PENDING, Notification.Status.PENDING),
                           (NOTIFICATIONS_FAILED, Notification.Status.FAILED)):
        counts = dict(Notification.objects.filter(status=status).values_list("channel__kind")
                      .annotate(count=Count("id")).order_by())
        outbox.append(Exposed(family, [Sample((kind.value,), counts.get(kind.value, 0))
                                       for kind in NotificationChannel.Kind]))
    return [incidents, rule_states, *outbox]
