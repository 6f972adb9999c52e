"""The command, the task, the schedule, the demo part and retention."""

import random
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts import retention, tasks
from alerts.models import AlertIncident, AlertRule, IncidentEvent
from analytics.platform.collectors import DemoContext, declared_periodic_jobs
from tests.alerts.factories import at, evaluate, make_rule, org, record

pytestmark = pytest.mark.django_db


def test_check_alerts_runs_one_pass():
    acme = org()
    make_rule(acme)
    record(acme, "cpu.usage", 99, timezone.now() - timedelta(seconds=5))
    out = StringIO()
    call_command("check_alerts", stdout=out)
    assert out.getvalue().startswith("2 rules in 2 queries: 1 moves, 1 opened, 0 resolved, 0 unsilenced, 0 errors")
    assert AlertIncident.objects.count() == 1


def test_check_alerts_loop_runs_passes_every_interval(monkeypatch):
    from alerts.services import evaluation

    passes, naps = [], []
    monkeypatch.setattr(evaluation, "evaluate_rules", lambda: passes.append(1))
    evaluation.run_forever(interval_seconds=60, iterations=3, sleep=naps.append)
    assert len(passes) == 3 and len(naps) == 2 and all(55 < nap <= 60 for nap in naps)
    with pytest.raises(CommandError):
        call_command("check_alerts", "--loop", "--interval", "0")


def test_the_task_is_named_and_runs_a_pass():
    assert tasks.check_alerts.name == "alerts.check_alerts"
    result = tasks.check_alerts()
    assert result["rules"] == 1 and result["errors"] == 0


def test_the_schedule_evaluates_every_minute():
    jobs = {job.task: job for job in declared_periodic_jobs()}
    assert jobs["alerts.check_alerts"].every.total_seconds() == 60


def test_the_demo_part_makes_one_firing_one_acknowledged_and_one_resolved_incident_idempotently():
    from alerts import demo as alerts_demo
    from analytics import demo as analytics_demo

    context = DemoContext(days=3, now=timezone.now(), rng=random.Random(7), log=lambda message: None)
    analytics_demo.seed(context)
    alerts_demo.seed(context)
    acme = org("acme")
    statuses = {status: set(AlertIncident.objects.filter(org=acme, status=status).values_list("rule_name", flat=True))
                for status in ("open", "acknowledged", "resolved")}
    assert statuses["acknowledged"] == {"API latency p95 high"}
    # The failing skill when the skill demo is there, else the slowest API call: one of them, firing.
    assert len(statuses["open"]) == 1 and statuses["open"] < {"legacy_scraper failing", "API latency max high"}
    assert "CPU high" in statuses["resolved"]
    resolved = AlertIncident.objects.filter(rule_name="CPU high", status="resolved").first()
    assert list(resolved.events.values_list("kind", flat=True))[-3:] == ["pending", "firing", "resolved"]
    acknowledged = AlertIncident.objects.get(status="acknowledged")
    assert list(acknowledged.events.values_list("kind", flat=True)) == ["firing", "acknowledged"]
    rules, incidents = AlertRule.objects.count(), AlertIncident.objects.count()
    alerts_demo.seed(context)
    assert (AlertRule.objects.count(), AlertIncident.objects.count()) == (rules, incidents)


def test_retention_keeps_incidents_and_removes_old_moves_that_never_became_one(settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 30
    acme = org()
    flapping = make_rule(acme, name="flapping", duration_seconds=600)
    firing = make_rule(acme, name="firing")
    record(acme, "cpu.usage", 99, at(-5))
    evaluate(at(0), flapping, firing)
    evaluate(at(400), flapping, firing)  # flapping: pending, then recovered without firing
    removed = retention.cleanup(at(0) + timedelta(days=31))
    assert removed == {"alert moves without incident": 2}
    assert list(IncidentEvent.objects.values_list("kind", flat=True)) == ["firing", "resolved"]
    assert AlertIncident.objects.count() == 1
