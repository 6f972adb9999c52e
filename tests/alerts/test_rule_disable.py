"""Disabling a rule resolves its unresolved incidents (docs/alerting.md), through the API and the admin.

Whatever their status — open, acknowledged, silenced — a disabled rule's incidents are resolved with the
note "rule disabled" and its group states forgotten; incidents already resolved and other rules' incidents
are left alone; a disabled rule is not evaluated; enabling it again starts from nothing.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule, AlertRuleGroupState
from alerts.services.evaluation import evaluate_rules
from tests.alerts.factories import make_rule, record

pytestmark = pytest.mark.django_db
HOSTS = ("web-1", "web-2", "web-3", "web-4")


def fire(org, rule_name, hosts, moment, metric="cpu.usage"):
    """The rule (grouped by host) breaching on every host at ``moment``, evaluated: one incident per host."""
    rule = AlertRule.objects.filter(org=org, name=rule_name).first() or make_rule(
        org, name=rule_name, metric_name=metric, group_by=["host"])
    for host in hosts:
        record(org, rule.metric_name, 99, moment - timedelta(seconds=10), host=host)
    evaluate_rules(moment, rules=AlertRule.objects.filter(pk=rule.pk))
    return rule


def incident_of(rule, host) -> AlertIncident:
    return AlertIncident.objects.get(rule_id=rule.pk, group__host=host)


def test_disabling_a_rule_through_the_api_resolves_every_unresolved_incident(personas):
    now = timezone.now()
    rule = fire(personas.org, "cpu high", HOSTS, now)
    other = fire(personas.org, "memory", ["db-1"], now, metric="memory.usage")
    assert AlertIncident.objects.filter(rule=rule, status="open").count() == 4
    assert AlertRuleGroupState.objects.filter(rule=rule).count() == 4
    api = "alerts/incidents/{}/"
    until = (now + timedelta(hours=1)).isoformat()
    assert personas.member.post(api.format(incident_of(rule, "web-2").pk) + "acknowledge").status_code == 200
    assert personas.member.post(api.format(incident_of(rule, "web-3").pk) + "silence",
                                {"until": until}).status_code == 200
    assert personas.member.post(api.format(incident_of(rule, "web-4").pk) + "resolve",
                                {"note": "fixed by hand"}).status_code == 200
    already_resolved = incident_of(rule, "web-4")
    statuses = {host: incident_of(rule, host).status for host in HOSTS}
    assert statuses == {"web-1": "open", "web-2": "acknowledged", "web-3": "silenced", "web-4": "resolved"}

    response = personas.member.patch(f"alerts/rules/{rule.pk}", {"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False

    for host in ("web-1", "web-2", "web-3"):
        incident = incident_of(rule, host)
        assert incident.status == "resolved", host
        assert incident.resolved_at is not None
        last = incident.events.order_by("at", "id").last()
        assert (last.kind, last.from_status, last.to_status, last.note) == (
            "resolved", statuses[host], "resolved", "rule disabled")
        assert last.actor.startswith("token member (")
    assert incident_of(rule, "web-3").silences.get().ended_at is not None  # the silence ended with it
    # The incident resolved by hand before is untouched: no second "resolved" event, same time.
    untouched = incident_of(rule, "web-4")
    assert (untouched.resolved_at, untouched.events.filter(kind="resolved").count()) == (
        already_resolved.resolved_at, 1)
    assert not AlertRuleGroupState.objects.filter(rule=rule).exists()
    # The other rule's incident stays open.
    assert AlertIncident.objects.get(rule=other).status == "open"
    # The API shows them resolved, and no longer among the unresolved ones.
    unresolved = personas.member.get("alerts/incidents", {"rule": rule.pk}).json()
    assert unresolved["count"] == 0

    # Still breaching, a disabled rule is not evaluated: nothing opens.
    later = now + timedelta(minutes=1)
    for host in HOSTS:
        record(personas.org, rule.metric_name, 99, later - timedelta(seconds=5), host=host)
    evaluate_rules(later)
    assert AlertIncident.objects.filter(rule=rule).exclude(status="resolved").count() == 0

    # Disabling again changes nothing; enabling starts from nothing, and the next pass opens new incidents.
    assert personas.member.patch(f"alerts/rules/{rule.pk}", {"enabled": False}).status_code == 200
    assert personas.member.patch(f"alerts/rules/{rule.pk}", {"enabled": True}).status_code == 200
    assert AlertIncident.objects.filter(rule=rule).count() == 4
    evaluate_rules(later, rules=AlertRule.objects.filter(pk=rule.pk))
    fresh = AlertIncident.objects.filter(rule=rule, status="open")
    assert sorted(incident.group["host"] for incident in fresh) == sorted(HOSTS)
    assert AlertIncident.objects.filter(rule=rule).count() == 8


def test_changing_only_the_condition_keeps_the_incidents(personas):
    # The counterpart: what the rule watches is the same, so its incidents are not resolved by the change.
    rule = fire(personas.org, "cpu high", ["web-1"], timezone.now())
    assert personas.member.patch(f"alerts/rules/{rule.pk}", {"threshold": 90}).status_code == 200
    assert incident_of(rule, "web-1").status == "open"


RULE_FORM = {"name": "cpu high", "description": "", "severity": "warning", "labels": "{}",
             "metric_name": "cpu.usage", "aggregation": "avg", "window_seconds": "300", "tags": "{}",
             "group_by": '["host"]', "condition_operator": "gt", "threshold": "80", "duration_seconds": "0",
             "keep_firing_seconds": "0", "reopen_after_seconds": "0", "no_data": "ok", "group_states-TOTAL_FORMS": "0",
             "group_states-INITIAL_FORMS": "0"}


def test_disabling_a_rule_in_the_admin_resolves_its_incidents_and_says_so(personas, admin_client):
    rule = fire(personas.org, "cpu high", ["web-1", "web-2"], timezone.now())
    assert AlertIncident.objects.filter(rule=rule, status="open").count() == 2
    form = {**RULE_FORM, "org": personas.org.pk}  # "enabled" left out: the box unticked
    response = admin_client.post(f"/admin/alerts/alertrule/{rule.pk}/change/", form, follow=True)
    assert response.status_code == 200
    rule.refresh_from_db()
    assert rule.enabled is False
    assert "2 incident(s) of the old definition resolved." in [str(m) for m in response.context["messages"]]
    for host in ("web-1", "web-2"):
        incident = incident_of(rule, host)
        assert (incident.status, incident.resolved_by) == ("resolved", "admin")
        assert incident.events.order_by("at", "id").last().note == "rule disabled"
    assert not AlertRuleGroupState.objects.filter(rule=rule).exists()
