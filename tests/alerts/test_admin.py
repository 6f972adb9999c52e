"""The ops workflow in the admin: incident list order and filters, the actions with their forms, the timeline,
and the rule page with its state and recent incidents."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule
from alerts.services import incidents
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


def action(admin_client, name, incidents, *, listed="", **form):
    """A bulk action from the list (``listed``: its filter, e.g. "?status=all"; default: the unresolved)."""
    data = {"action": name, ACTION_CHECKBOX_NAME: [i.pk for i in incidents]}
    return admin_client.post(CHANGELIST + listed, {**data, **form}, follow=bool(form))


def shown(admin_client, **params) -> list[int]:
    response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def test_incidents_are_listed_unresolved_first_by_status_then_most_severe_then_newest(admin_client):
    acknowledged_critical = firing("ack", "critical")
    incidents.acknowledge(acknowledged_critical.pk, actor="ops")
    silenced_critical = firing("quiet", "critical")
    incidents.silence(silenced_critical.pk, until=timezone.now() + timedelta(hours=1), actor="ops")
    resolved_critical = firing("done", "critical")
    incidents.resolve(resolved_critical.pk, actor="ops")
    acknowledged_info = firing("ack info", "info")
    incidents.acknowledge(acknowledged_info.pk, actor="ops")
    older_critical = firing("a", "critical")
    warning = firing("b", "warning")
    newer_critical = firing("c", "critical")
    info = firing("d", "info")

    unresolved = [newer_critical.pk, older_critical.pk, warning.pk, info.pk,  # open
                  acknowledged_critical.pk, acknowledged_info.pk,  # acknowledged
                  silenced_critical.pk]  # silenced
    assert shown(admin_client) == unresolved  # resolved ones are not in the default view
    assert shown(admin_client, status="all") == [*unresolved, resolved_critical.pk]
    assert shown(admin_client, status="resolved") == [resolved_critical.pk]
    assert shown(admin_client, status="acknowledged") == [acknowledged_critical.pk, acknowledged_info.pk]
    assert shown(admin_client, status="unresolved") == unresolved


def test_the_status_filter_offers_unresolved_by_default_then_each_status_and_all(admin_client):
    firing("a")
    page = admin_client.get(CHANGELIST).content.decode()
    filters = page[page.index('id="changelist-filter"'):]
    for choice in ("?status=open", "?status=acknowledged", "?status=silenced", "?status=resolved", "?status=all"):
        assert f'href="{choice}"' in filters, choice
    assert re.search(r'<li class="selected">\s*<a href="\?"[^>]*>Unresolved</a>', filters), filters[:1500]


def test_a_click_on_a_column_header_still_orders_by_it(admin_client):
    info, critical = firing("a", "info"), firing("b", "critical")
    columns = admin_client.get(CHANGELIST).context["cl"].list_display
    severity_column = columns.index("severity_display")
    assert shown(admin_client, o=str(severity_column)) == [info.pk, critical.pk]  # least severe first
    assert shown(admin_client, o=f"-{severity_column}") == [critical.pk, info.pk]


def test_filters_by_status_and_severity(admin_client):
    a, b = firing("a", "critical"), firing("b", "info")
    action(admin_client, "resolve_incidents", [b], apply="yes", note="")
    assert shown(admin_client, status="resolved") == [b.pk]
    assert shown(admin_client, severity__exact="critical") == [a.pk]
    assert shown(admin_client, severity__exact="info") == []  # b is resolved: behind the status filter
    assert shown(admin_client, severity__exact="info", status="all") == [b.pk]


def step_url(incident, step) -> str:
    return f"{CHANGELIST}{incident.pk}/{step}/"


def test_the_incident_page_has_acknowledge_silence_and_resolve_buttons_each_with_a_note(admin_client):
    incident = firing("cpu high", "critical")
    page = admin_client.get(f"{CHANGELIST}{incident.pk}/change/").content.decode()
    for step, title in (("acknowledge", "Acknowledge"), ("silence", "Silence"), ("resolve", "Resolve")):
        form = page[page.index(f'action="{step_url(incident, step)}"'):]
        form = form[:form.index("</form>")]
        assert f'name="{step}-note"' in form and f'value="{title}"' in form, form
    assert 'name="silence-until_0"' in page and 'name="silence-until_1"' in page
    assert 'name="_save"' not in page  # every field is read-only: no Save button to press


def test_each_button_takes_its_step_through_the_service_and_the_timeline_says_what_it_was(admin_client):
    incident = firing("cpu high", "critical")
    change_page = f"{CHANGELIST}{incident.pk}/change/"

    response = admin_client.post(step_url(incident, "acknowledge"), {"acknowledge-note": "looking"})
    assert response.status_code == 302 and response["Location"] == change_page
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", "admin")
    page = admin_client.get(change_page).content.decode()
    assert f"Acknowledge: {incident}." in page
    assert 'action="' + step_url(incident, "acknowledge") + '"' not in page  # not allowed from acknowledged
    assert 'action="' + step_url(incident, "silence") + '"' in page

    until = (timezone.now() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    admin_client.post(step_url(incident, "silence"), {"silence-until_0": until.strftime("%Y-%m-%d"),
                                                      "silence-until_1": "12:00:00", "silence-note": "maintenance"})
    incident.refresh_from_db()
    assert (incident.status, incident.silenced_until) == ("silenced", until)
    assert incident.silences.get().note == "maintenance"

    admin_client.post(step_url(incident, "resolve"), {"resolve-note": "fixed the disk"})
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == ("resolved", "admin")

    page = admin_client.get(change_page).content.decode()
    timeline = page[page.index("<th>what happened</th>"):]
    timeline = timeline[:timeline.index("</table>")]
    assert "<td>firing</td>" in timeline
    assert "<td>acknowledged by admin: looking</td>" in timeline
    assert f"<td>silenced by admin: until {until:%Y-%m-%dT%H:%M:%S}Z: maintenance</td>" in timeline
    assert "<td>resolved by admin: fixed the disk</td>" in timeline
    assert "no data" not in timeline  # a person's step measures nothing
    assert "no further steps" in page and 'action="' + step_url(incident, "resolve") + '"' not in page


def test_a_silence_in_the_past_shows_the_form_again_with_the_error(admin_client):
    incident = firing("a")
    response = admin_client.post(step_url(incident, "silence"), {"silence-until_0": "2001-01-01",
                                                                 "silence-until_1": "00:00:00", "silence-note": "x"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Must be in the future." in page and 'name="silence-until_0"' in page
    incident.refresh_from_db()
    assert incident.status == "open" and not incident.silences.exists()


def test_a_step_the_status_does_not_allow_is_a_message_not_an_error(admin_client):
    incident = firing("a")
    incidents.resolve(incident.pk, actor="ops")
    response = admin_client.post(step_url(incident, "acknowledge"), {"acknowledge-note": ""}, follow=True)
    assert response.status_code == 200
    assert "is resolved; it cannot become acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_a_step_needs_the_change_permission(client):
    incident = firing("a")
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alertincident"))
    client.force_login(viewer)
    page = client.get(f"{CHANGELIST}{incident.pk}/change/")
    assert page.status_code == 200 and 'name="acknowledge-note"' not in page.content.decode()
    assert client.post(step_url(incident, "acknowledge"), {"acknowledge-note": "x"}).status_code == 403
    incident.refresh_from_db()
    assert incident.status == "open"


def test_a_step_on_an_unknown_incident_is_a_404(admin_client):
    assert admin_client.post(f"{CHANGELIST}999999/resolve/", {"resolve-note": ""}).status_code == 404


def test_incident_event_and_silence_pages_open(admin_client):
    """Their incident select reused the incident list's ordering, an annotation absent there: a 500."""
    incident = firing("a")
    incidents.silence(incident.pk, until=timezone.now() + timedelta(hours=1), actor="ops", note="night")
    event = incident.events.get(kind="silenced")
    silence = incident.silences.get()
    for url in ("/admin/alerts/incidentevent/", f"/admin/alerts/incidentevent/{event.pk}/change/",
                "/admin/alerts/silence/", f"/admin/alerts/silence/{silence.pk}/change/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "night" in response.content.decode(), url


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
    assert "<td>firing</td>" in page
    for step in ("acknowledged by admin: looking", "silenced by admin: until", "resolved by admin: fixed the disk"):
        assert f"<td>{step}" in page, step
    assert "maintenance" in page
    kinds = list(incident.events.values_list("kind", "actor"))
    assert kinds == [("firing", ""), ("acknowledged", "admin"), ("silenced", "admin"), ("resolved", "admin")]


def test_an_illegal_move_is_a_message_not_an_error(admin_client):
    incident = firing("a")
    action(admin_client, "resolve_incidents", [incident], apply="yes", note="")
    response = action(admin_client, "acknowledge_incidents", [incident], listed="?status=all", apply="yes", note="")
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
            "duration_seconds": "0", "keep_firing_seconds": "0", "reopen_after_seconds": "0", "no_data": "ok",
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


RULE_FORM = {"name": "queue", "description": "", "enabled": "on", "severity": "warning", "labels": "{}",
             "metric_name": "queue.depth", "aggregation": "max", "window_seconds": "300", "tags": "{}",
             "group_by": "[]", "condition_operator": "gt", "threshold": "100", "duration_seconds": "0",
             "keep_firing_seconds": "0", "reopen_after_seconds": "0", "no_data": "ok", "group_states-TOTAL_FORMS": "0",
             "group_states-INITIAL_FORMS": "0"}


def test_a_rule_on_a_metric_never_recorded_is_saved_with_a_visible_warning(admin_client):
    acme = org()
    response = admin_client.post("/admin/alerts/alertrule/add/", {**RULE_FORM, "org": acme.pk}, follow=True)
    assert response.status_code == 200
    assert AlertRule.objects.filter(org=acme, name="queue").exists()
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert warnings == ["Saved, but no samples of metric 'queue.depth' have been recorded yet; "
                        "with no_data: ok this rule cannot fire."]
    assert 'class="warning"' in response.content.decode()  # shown on the page the save leads to


def test_a_rule_on_a_recorded_metric_is_saved_without_a_warning(admin_client):
    acme = org()
    record(acme, "queue.depth", 3, timezone.now())
    response = admin_client.post("/admin/alerts/alertrule/add/", {**RULE_FORM, "org": acme.pk}, follow=True)
    assert AlertRule.objects.filter(org=acme, name="queue").exists()
    assert [m for m in response.context["messages"] if m.level_tag == "warning"] == []


def test_a_platform_rule_counts_every_orgs_samples(admin_client):
    record(org("globex"), "queue.depth", 3, timezone.now())
    response = admin_client.post("/admin/alerts/alertrule/add/", {**RULE_FORM, "org": ""}, follow=True)
    assert AlertRule.objects.filter(org=None, name="queue").exists()
    assert [m for m in response.context["messages"] if m.level_tag == "warning"] == []


def test_a_slack_channels_page_shows_its_url_reduced_and_saving_it_back_keeps_the_url(admin_client):
    from alerts.models import NotificationChannel

    secret_url = "https://hooks.slack.com/services/T000/B000/the-secret-part"
    channel = NotificationChannel.objects.create(org=org(), name="slack", kind="slack", config={"url": secret_url})
    page = f"/admin/alerts/notificationchannel/{channel.pk}/change/"
    response = admin_client.get(page)
    assert response.status_code == 200 and "the-secret-part" not in response.content.decode()
    form = response.context["adminform"].form
    data = {name: form[name].value() for name in ("name", "kind", "repeat_interval_seconds", "group_wait_seconds",
                                                  "timeout_seconds")}
    data.update(org=channel.org.pk, config=form.fields["config"].prepare_value(form.initial["config"]),
                default_for="[]", enabled="on")
    assert admin_client.post(page, data).status_code == 302
    channel.refresh_from_db()
    assert channel.config == {"url": secret_url}  # the reduced URL sent back unchanged keeps the real one
    data["config"] = '{"url": "https://hooks.slack.com/services/T1/B1/new"}'
    assert admin_client.post(page, data).status_code == 302
    channel.refresh_from_db()
    assert channel.config == {"url": "https://hooks.slack.com/services/T1/B1/new"}
