"""Alerting's part of seed_demo: rules over org acme's demo metrics and skills, one incident firing, one
acknowledged and one resolved, each with its timeline.

Nothing is written by hand: the evaluator runs at chosen moments of the demo history (``now=``), and
the acknowledgement goes through the same service as the API. Idempotent: once the demo rules exist,
nothing is done.
"""

from __future__ import annotations

from datetime import time, timedelta

from alerts.models import AlertIncident, AlertRule, MaintenanceWindow, NotificationChannel
from alerts.services import incidents
from alerts.services.evaluation import evaluate_rules
from analytics.models import MetricSeries, Organization

DEMO_ORG = "acme"
LABELS = {"demo": "true"}


def _rule(org, name, **fields) -> AlertRule:
    return AlertRule.objects.create(org=org, name=name, labels=LABELS, **fields)


def seed(context) -> None:
    org = Organization.objects.filter(slug=DEMO_ORG).first()
    if org is None or AlertRule.objects.filter(org=org, labels__demo="true").exists():
        return
    now = context.now
    # Resolved: CPU above 60% over 30 minutes, per host, for 10 minutes: it fires at yesterday's
    # afternoon peak (about 75%) and clears in the evening (about 45%).
    cpu = _rule(org, "CPU high", description="Average CPU above 60% for 10 minutes, per host.",
                metric_name="cpu.usage", aggregation="avg", window_seconds=1800, group_by=["host"],
                condition_operator="gt", threshold=60, duration_seconds=600, severity="warning")
    yesterday = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for moment in (yesterday.replace(hour=13), yesterday.replace(hour=13, minute=15),
                   yesterday.replace(hour=21)):
        if moment >= now - timedelta(days=context.days):
            evaluate_rules(moment, rules=AlertRule.objects.filter(pk=cpu.pk))

    # Acknowledged: p95 API latency above 50 ms (the demo endpoints answer in 45-360 ms).
    latency = _rule(org, "API latency p95 high", description="p95 of api.response_time above 50 ms.",
                    metric_name="api.response_time", aggregation="p95", window_seconds=3600,
                    condition_operator="gt", threshold=50, severity="error")
    # Never fires: queue depth peaks around 120.
    _rule(org, "Order queue backed up", description="Order queue deeper than 500 items for 5 minutes.",
          metric_name="queue.depth", aggregation="max", window_seconds=300, tags={"queue": "orders"},
          condition_operator="gt", threshold=500, duration_seconds=300, severity="critical")
    # Firing: the demo's failing skill, when skill data is there; otherwise the slowest API call.
    if MetricSeries.objects.filter(org=org, name="skill.executions").exists():
        _rule(org, "legacy_scraper failing", description="Success rate of legacy_scraper below 90% over 24 hours.",
              metric_name="skill.success_rate", window_seconds=86400, tags={"skill_id": "legacy_scraper"},
              condition_operator="lt", threshold=0.9, severity="critical")
    else:
        _rule(org, "API latency max high", description="Slowest API call above 100 ms in the last hour.",
              metric_name="api.response_time", aggregation="max", window_seconds=3600,
              condition_operator="gt", threshold=100, severity="critical")

    evaluate_rules(now, rules=AlertRule.objects.filter(org=org, labels__demo="true", enabled=True))
    open_latency = latency.incidents.unresolved().first()
    if open_latency is not None:
        incidents.acknowledge(open_latency.pk, actor="demo", now=now,
                              note="Contracts endpoint is slow at peak; looking into the query plan.")
    # Where critical and error incidents are told: an email list. Without EMAIL_HOST (make run) the emails
    # are printed on the console, so the demo never sends anything off the machine.
    NotificationChannel.objects.get_or_create(org=org, name="ops email", defaults={
        "kind": NotificationChannel.Kind.EMAIL, "config": {"to": ["ops@acme.example"]},
        "default_for": ["critical", "error"]})
    # The database's weekly backup: its service checks may fail then, and nobody is paged for it.
    MaintenanceWindow.objects.get_or_create(name="weekly database backup", defaults={
        "matchers": {"service": "platform-database"}, "weekdays": [6], "start_time": time(2, 0),
        "duration_minutes": 60, "timezone": "Europe/Berlin", "note": "pg_dump and restore test"})
    counts = {status: AlertIncident.objects.filter(org=org, status=status).count()
              for status in ("open", "acknowledged", "resolved")}
    context.log("alerts: demo rules, incidents " + ", ".join(f"{n} {status}" for status, n in counts.items()))
