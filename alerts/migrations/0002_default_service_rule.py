"""The default platform rule: a service that turns unhealthy opens a critical incident, one per service."""

from django.db import migrations

DEFAULT_RULE = {
    "name": "service unhealthy",
    "description": "A monitored service is unhealthy (service.health 0: 1 healthy, 0.5 degraded, 0 unhealthy).",
    "metric_name": "service.health",
    "aggregation": "min",
    "window_seconds": 300,
    "tags": {},
    "group_by": ["service"],
    "condition_operator": "lt",
    "threshold": 0.5,
    "duration_seconds": 0,
    "keep_firing_seconds": 0,
    "severity": "critical",
    "no_data": "ok",
    "labels": {"source": "monitoring"},
    "enabled": True,
}


def create_default_rule(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    if not AlertRule.objects.filter(org__isnull=True, name=DEFAULT_RULE["name"]).exists():
        AlertRule.objects.create(org=None, **DEFAULT_RULE)


def remove_default_rule(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.filter(org__isnull=True, name=DEFAULT_RULE["name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(create_default_rule, remove_default_rule)]
