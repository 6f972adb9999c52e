"""The default "service unhealthy" rule, fed by monitoring's services and their transitions."""

import pytest

from alerts.models import AlertIncident, AlertRule
from monitoring.models import CheckOutcome, ServiceTransition
from tests.alerts.factories import at, evaluate, make_rule
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db

FAIL = CheckOutcome(False, 3.0, "connection refused")
OK = CheckOutcome(True, 3.0)


def default_rule() -> AlertRule:
    return AlertRule.objects.get(org=None, name="service unhealthy")


def test_the_default_rule_exists_for_staff_only():
    rule = default_rule()
    assert (rule.metric_name, rule.condition_operator, rule.threshold, rule.group_by, rule.severity,
            rule.duration_seconds, rule.enabled) == ("service.health", "lt", 0.5, ["service"], "critical", 0, True)


def test_the_service_rule_fires_when_a_service_turns_unhealthy_and_resolves_when_it_recovers():
    db = make_service("db", failures_before_unhealthy=2)
    make_service("cache").record(OK, checked_at=at(0))
    db.record(OK, checked_at=at(0))
    evaluate(at(5))
    assert not AlertIncident.objects.exists()

    db.record(FAIL, checked_at=at(60))  # one failure: degraded (0.5), not below 0.5
    evaluate(at(65))
    assert not AlertIncident.objects.exists()

    db.record(FAIL, checked_at=at(120))  # two in a row: unhealthy (0)
    evaluate(at(125))
    incident = AlertIncident.objects.get()
    assert (incident.rule, incident.group, incident.severity, incident.value, incident.org) == (
        default_rule(), {"service": "db"}, "critical", 0.0, None)

    db.record(OK, checked_at=at(180))
    evaluate(at(185))
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_an_unhealthy_spell_between_two_passes_is_still_seen_through_the_transitions():
    db = make_service("db", failures_before_unhealthy=1)
    db.record(OK, checked_at=at(0))
    evaluate(at(1))
    db.record(FAIL, checked_at=at(20))
    db.record(OK, checked_at=at(40))  # healthy again before the next pass
    evaluate(at(60))
    incident = AlertIncident.objects.get()
    assert incident.value == 0.0
    assert not ServiceTransition.objects.filter(claimed_at__isnull=True).exists()  # the pass claimed them
    evaluate(at(120))  # healthy now, and the transitions are claimed: it resolves
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_an_unknown_service_is_no_data():
    make_service("never-checked")
    evaluate(at(0))
    assert not AlertIncident.objects.exists()


def test_a_rule_on_one_service_without_group_by():
    search_rule = make_rule(None, name="search degraded", metric_name="service.health", condition_operator="lte",
                          threshold=0.5, tags={"service": "search"})
    search = make_service("search", failures_before_unhealthy=3)
    make_service("other", failures_before_unhealthy=1).record(FAIL, checked_at=at(0))
    search.record(FAIL, checked_at=at(0))  # degraded
    evaluate(at(1), search_rule)
    incident = AlertIncident.objects.get()
    assert (incident.group, incident.value) == ({}, 0.5)
