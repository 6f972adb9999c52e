"""Two evaluators at once open one incident per rule and group, never two.

Both evaluators read the metrics and decide "this group fires" before either writes: a barrier
holds each after its query until the other has queried too. Then both try to make the move. The
state row lock (``select_for_update`` on PostgreSQL; on SQLite the IMMEDIATE transaction that
serialises writers) makes the second one decide again on the first one's result, and the partial
unique constraint would refuse a second unresolved incident anyway. Runs on SQLite and, with
``TOOLWEAVER_TEST_DB=postgres``, on a real PostgreSQL where the two threads hold two connections.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from alerts.models import AlertIncident, AlertRule, AlertRuleGroupState, IncidentEvent
from alerts.services.evaluation import evaluate_rules
from alerts.sources import Sources
from analytics.models import Organization
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EVALUATORS = 2


def run_evaluators_at_once(monkeypatch, now, count=EVALUATORS):
    barrier = threading.Barrier(count, timeout=30)
    real_fetch = Sources.fetch

    def fetch_then_wait(self, metric_name, **kwargs):
        groups = real_fetch(self, metric_name, **kwargs)
        barrier.wait()  # every evaluator has read the data before any writes
        return groups

    monkeypatch.setattr(Sources, "fetch", fetch_then_wait)
    results, errors = [], []

    def evaluator():
        try:
            results.append(evaluate_rules(now, rules=AlertRule.objects.filter(metric_name="cpu.usage")))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_open_one_incident_per_rule_and_group(monkeypatch):
    org = Organization.objects.create(slug="acme")
    rule = AlertRule.objects.create(org=org, name="cpu", metric_name="cpu.usage", condition_operator="gt",
                                    threshold=80, group_by=["host"])
    items = [MetricItem("cpu.usage", 95.0, "gauge", "", "", {"host": host}, NOW - timedelta(seconds=10))
             for host in ("web-1", "web-2")]
    ingest_metric_items(org, items)

    results = run_evaluators_at_once(monkeypatch, NOW)

    assert sum(result.opened for result in results) == 2  # one per group, across both evaluators
    assert AlertIncident.objects.filter(rule=rule).count() == 2
    assert sorted(i.group["host"] for i in AlertIncident.objects.all()) == ["web-1", "web-2"]
    assert IncidentEvent.objects.filter(kind="firing").count() == 2
    assert AlertRuleGroupState.objects.filter(rule=rule, status="firing").count() == 2
    rule.refresh_from_db()
    assert rule.trigger_count == 2


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_resolve_once(monkeypatch):
    org = Organization.objects.create(slug="acme")
    rule = AlertRule.objects.create(org=org, name="cpu", metric_name="cpu.usage", condition_operator="gt",
                                    threshold=80)
    ingest_metric_items(org, [MetricItem("cpu.usage", 95.0, "gauge", "", "", {}, NOW - timedelta(seconds=10))])
    evaluate_rules(NOW, rules=AlertRule.objects.filter(pk=rule.pk))
    later = NOW + timedelta(minutes=10)  # the breaching point has left the window: no data, policy ok

    results = run_evaluators_at_once(monkeypatch, later)

    assert sum(result.resolved for result in results) == 1
    incident = AlertIncident.objects.get()
    assert incident.status == "resolved"
    assert incident.events.filter(kind="resolved").count() == 1

