"""The ops workflow in the admin: incident list order and filters, the actions with their forms, the timeline,
and the rule page with its state and recent incidents."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule
from alerts.services.evaluation import evaluate_rules
from tests.alerts.factories import make_rule, org, record

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/alerts/alertincident/"


def firing(name, severity="warning", organization=None, **fields) -> AlertIncident:
    organization = organization or org()
    now = timezone.now()
    rule = make_rule(organization, name=name, severity=severity, **fields)
    record(organization, rule.metric_name, 99, now - timedelta(seconds=5))
    evaluate_rules(now, rules=AlertRule.objects.filter(pk=rule.pk))
    return AlertIncident.objects.get(rule=rule)


def action(admin_client, name, incidents, **form):
    data = {"action": name, ACTION_CHECKBOX_NAME: [i.pk for i in incidents]}
    return admin_client.post(CHANGELIST, {**data, **form}, follow=bool(form))


def test_incidents_are_listed_most_severe_then_newest_first(admin_client):
    older_critical = firing("a", "critical")
    warning = firing("b", "warning")
    newer_critical = firing("c", "critical")
    info = firing("d", "info")
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == [newer_critical.pk, older_critical.pk, warning.pk, info.pk]


def test_filters_by_status_and_severity(admin_client):
    a, b = firing("a", "critical"), firing("b", "info")
    action(admin_client, "resolve_incidents", [b], apply="yes", note="")
    by_status = admin_client.get(CHANGELIST, {"status__exact": "resolved"}).context["cl"].result_list
    assert [i.pk for i in by_status] == [b.pk]
    by_severity = admin_client.get(CHANGELIST, {"severity__exact": "critical"}).context["cl"].result_list
    assert [i.pk for i in by_severity] == [a.pk]


def test_acknowledge_silence_and_resolve_actions_with_their_forms_each_on_the_timeline(admin_client):
    incident = firing("cpu high", "critical")

    form_page = action(admin_client, "acknowledge_incidents", [incident])
    assert form_page.status_code == 200
    assert b'name="note"' in form_page.content and str(incident).encode() in form_page.content
    incident.refresh_from_db()
    assert incident.status == "open"  # nothing happens before the form is sent
    done = action(admin_client, "acknowledge_incidents", [incident], apply="yes", note="looking")
    assert "Acknowledge: 1 incident(s)." in done.content.decode()
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", "admin")

    form_page = action(admin_client, "silence_incidents", [incident])
    assert b'name="until_0"' in form_page.content
    past = action(admin_client, "silence_incidents", [incident], apply="yes", until_0="2001-01-01", until_1="00:00:00")
    assert b"Must be in the future." in past.content
    until = timezone.now() + timedelta(days=1)
    action(admin_client, "silence_incidents", [incident], apply="yes", until_0=until.strftime("%Y-%m-%d"),
           until_1="12:00:00", note="maintenance")
    incident.refresh_from_db()
    assert incident.status == "silenced"
    assert incident.silenced_until == until.replace(hour=12, minute=0, second=0, microsecond=0)

    action(admin_client, "resolve_incidents", [incident], apply="yes", note="fixed the disk")
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == ("resolved", "admin")
    assert "fixed the disk" in incident.notes

    page = admin_client.get(f"{CHANGELIST}{incident.pk}/change/").content.decode()
    for kind in ("firing", "acknowledged", "silenced", "resolved"):
        assert f"<td>{kind}</td>" in page
    assert "fixed the disk" in page and "maintenance" in page and "looking" in page
    kinds = list(incident.events.values_list("kind", "actor"))
    assert kinds == [("firing", ""), ("acknowledged", "admin"), ("silenced", "admin"), ("resolved", "admin")]


def test_an_illegal_move_is_a_message_not_an_error(admin_client):
    incident = firing("a")
    action(admin_client, "resolve_incidents", [incident], apply="yes", note="")
    response = action(admin_client, "acknowledge_incidents", [incident], apply="yes", note="")
    assert response.status_code == 200
    assert "is resolved; it cannot become acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_one_action_on_several_incidents_reports_each(admin_client):
    a, b = firing("a"), firing("b")
    action(admin_client, "acknowledge_incidents", [a], apply="yes", note="")
    response = action(admin_client, "acknowledge_incidents", [a, b], apply="yes", note="")
    content = response.content.decode()
    assert "Acknowledge: 1 incident(s)." in content and "cannot become acknowledged" in content
    assert AlertIncident.objects.get(pk=b.pk).status == "acknowledged"


def test_the_rule_page_shows_its_state_and_recent_incidents(admin_client):
    incident = firing("cpu high", "critical", group_by=["host"])
    page = admin_client.get(f"/admin/alerts/alertrule/{incident.rule_id}/change/").content.decode()
    assert "firing" in page and f"#{incident.pk}" in page
    listing = admin_client.get("/admin/alerts/alertrule/").content.decode()
    assert "firing" in listing and "service unhealthy" in listing


def test_a_rule_in_error_shows_it(admin_client):
    rule = make_rule(org(), name="broken", last_error="RuntimeError: boom")
    page = admin_client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert "RuntimeError: boom" in page and ">error<" in page


def test_rules_are_created_and_validated_in_the_admin(admin_client):
    acme = org()
    form = {"org": acme.pk, "name": "queue", "description": "", "enabled": "on", "severity": "warning",
            "labels": "{}", "metric_name": "queue.depth", "aggregation": "max", "window_seconds": "300",
            "tags": '{"queue": "orders"}', "group_by": "[]", "condition_operator": "gt", "threshold": "100",
            "duration_seconds": "0", "keep_firing_seconds": "0", "no_data": "ok",
            "group_states-TOTAL_FORMS": "0", "group_states-INITIAL_FORMS": "0"}
    bad = admin_client.post("/admin/alerts/alertrule/add/", {**form, "group_by": '"queue"'})
    assert bad.status_code == 200 and "Must be a list of tag keys" in bad.content.decode()
    response = admin_client.post("/admin/alerts/alertrule/add/", form)
    assert response.status_code == 302
    assert AlertRule.objects.get(name="queue").tags == {"queue": "orders"}


def test_deleting_a_rule_in_the_admin_keeps_its_incidents(admin_client):
    incident = firing("gone")
    response = admin_client.post(f"/admin/alerts/alertrule/{incident.rule_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.rule_id, incident.status) == (None, "resolved")
