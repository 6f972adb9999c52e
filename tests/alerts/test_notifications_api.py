"""alerts/channels, alerts/silences and alerts/maintenance-windows (docs/notifications.md, API)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Silence
from alerts.notifications.models import MaintenanceWindow, NotificationChannel
from tests.alerts.factories import make_rule

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.slack.com/services/T000/B000/very-secret"


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def webhook(**fields):
    return {"name": "ops hook", "kind": "webhook", "config": {"url": HOOK}, "secret": "s3cret", **fields}


# --- Channels ---------------------------------------------------------------------------------


def test_a_channel_is_created_and_its_secrets_are_never_answered(personas):
    rule = make_rule(personas.org, name="cpu")
    response = personas.member.post("alerts/channels", webhook(rules=[rule.pk], default_for=["critical"]))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "secret" not in body and body["has_secret"] is True
    assert body["config"] == {"url": "https://hooks.slack.com/…"}
    assert (body["org"], body["rules"], body["default_for"], body["kind"]) == (
        "acme", [rule.pk], ["critical"], "webhook")
    assert "very-secret" not in personas.member.get(f"alerts/channels/{body['id']}").content.decode()
    assert "s3cret" not in personas.member.get("alerts/channels").content.decode()
    channel = NotificationChannel.objects.get(pk=body["id"])
    assert channel.config["url"] == HOOK and channel.secret == "s3cret" and list(channel.rules.all()) == [rule]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost:9000/alerts",
                                 "https://10.0.0.5/hook", "https://alerts.internal.example.com:8443/x"])
def test_a_webhook_may_point_at_an_internal_receiver(personas, url):
    response = personas.member.post("alerts/channels", webhook(config={"url": url}))
    assert response.status_code == 201, response.json()
    assert NotificationChannel.objects.get(pk=response.json()["id"]).config["url"] == url


def test_an_email_channel_shows_its_recipients(personas):
    body = personas.member.post("alerts/channels", {"name": "mail", "kind": "email",
                                                    "config": {"to": ["ops@example.com"]}}).json()
    assert body["config"] == {"to": ["ops@example.com"]} and body["has_secret"] is False


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "email"}, "config"),
    ({"config": {"url": "ftp://example.com/x"}}, "config"),
    ({"config": {"to": ["not an address"]}, "kind": "email"}, "config"),
    ({"default_for": [{}]}, "default_for"),
    ({"default_for": ["loud"]}, "default_for"),
    ({"default_for": "critical"}, "default_for"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
    ({"timeout_seconds": "5"}, "timeout_seconds"),
    ({"repeat_interval_seconds": -1}, "repeat_interval_seconds"),
    ({"enabled": "yes"}, "enabled"),
    ({"name": "bad\x07name"}, "name"),
    ({"name": 5}, "name"),
    ({"secret": "tab\there"}, "secret"),
    ({"config": {"url": HOOK, "x": {"nested": []}}}, "config"),
    ({"config": [HOOK]}, "config"),
    ({"rules": [{}]}, "rules"),
    ({"kind": 1}, "kind"),
])
def test_bad_channels_are_400s_naming_the_field(personas, change, field):
    response = personas.member.post("alerts/channels", webhook(**change))
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()


def test_rules_must_be_the_orgs_own(personas):
    theirs = make_rule(personas.other_org, name="theirs")
    response = personas.member.post("alerts/channels", webhook(rules=[theirs.pk]))
    assert response.status_code == 400 and "rules" in response.json()["errors"]


def test_patch_changes_only_what_is_sent_and_kind_travels_with_config(personas):
    channel_id = personas.member.post("alerts/channels", webhook()).json()["id"]
    response = personas.member.patch(f"alerts/channels/{channel_id}", {"enabled": False, "timeout_seconds": 3})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert NotificationChannel.objects.get(pk=channel_id).secret == "s3cret"
    assert personas.member.patch(f"alerts/channels/{channel_id}", {"kind": "email"}).status_code == 400
    response = personas.member.patch(f"alerts/channels/{channel_id}",
                                     {"kind": "email", "config": {"to": ["a@example.com"]}})
    assert response.status_code == 200 and response.json()["kind"] == "email"
    assert personas.member.delete(f"alerts/channels/{channel_id}").status_code == 204
    assert personas.member.get(f"alerts/channels/{channel_id}").status_code == 404


def test_channels_are_scoped_and_writes_need_a_writing_token(personas):
    assert personas.reader.post("alerts/channels", webhook()).status_code == 403
    assert personas.anonymous.get("alerts/channels").status_code == 401
    theirs = personas.outsider.post("alerts/channels", webhook()).json()["id"]
    platform = NotificationChannel.objects.create(name="platform", kind="email", config={"to": ["a@example.com"]})
    assert personas.member.get("alerts/channels").json()["count"] == 0
    for path in (f"alerts/channels/{theirs}", f"alerts/channels/{platform.pk}"):
        assert personas.member.get(path).status_code == 404
        assert personas.member.patch(path, {"enabled": False}).status_code == 404
        assert personas.member.delete(path).status_code == 404
    assert personas.staff.get("alerts/channels").json()["count"] == 2
    assert personas.staff.post("alerts/channels", webhook()).status_code == 400
    assert personas.staff.post("alerts/channels?org=acme", webhook()).json()["org"] == "acme"


# --- Silences ---------------------------------------------------------------------------------


def test_a_general_silence_is_created_listed_changed_and_deleted(personas):
    rule = make_rule(personas.org, name="cpu")
    until = timezone.now() + timedelta(hours=2)
    response = personas.member.post("alerts/silences", {"rule": rule.pk, "matchers": {"host": "h1"},
                                                        "until": iso(until), "note": "deploy"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["rule"], body["severity"], body["incident"], body["ended_at"], body["org"]) == (
        rule.pk, "", None, None, "acme")
    assert body["created_by"].startswith("token member") and body["until"].endswith("Z")
    silence = Silence.objects.get(pk=body["id"])
    assert silence.is_active(timezone.now())
    assert personas.member.get("alerts/silences").json()["count"] == 1
    response = personas.member.patch(f"alerts/silences/{silence.pk}", {"severity": "critical"})
    assert response.status_code == 200 and response.json()["severity"] == "critical"
    assert personas.member.delete(f"alerts/silences/{silence.pk}").status_code == 204
    assert not Silence.objects.filter(pk=silence.pk).exists()
    assert personas.member.get(f"alerts/silences/{silence.pk}").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"until": "soon", "severity": "critical"}, "until"),
    ({"until": 5, "severity": "critical"}, "until"),
    ({"severity": "critical"}, "until"),
    ({"until": "2020-01-01T00:00:00Z", "starts_at": "2020-01-02T00:00:00Z", "severity": "critical"}, "until"),
    ({"until": "2099-01-01T00:00:00Z"}, "matchers"),
    ({"until": "2099-01-01T00:00:00Z", "matchers": {"a": 1}}, "matchers"),
    ({"until": "2099-01-01T00:00:00Z", "matchers": {"": "x"}}, "matchers"),
    ({"until": "2099-01-01T00:00:00Z", "matchers": {f"k{i}": "v" for i in range(21)}}, "matchers"),
    ({"until": "2099-01-01T00:00:00Z", "severity": "loud"}, "severity"),
    ({"until": "2099-01-01T00:00:00Z", "severity": ["critical"]}, "severity"),
    ({"until": "2099-01-01T00:00:00Z", "rule": 999999}, "rule"),
    ({"until": "2099-01-01T00:00:00Z", "rule": "1"}, "rule"),
    ({"until": "2099-01-01T00:00:00Z", "severity": "critical", "note": "a\x00b"}, "note"),
])
def test_bad_silences_are_400s_naming_the_field(personas, body, field):
    response = personas.member.post("alerts/silences", body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()


def test_an_incidents_own_silence_is_read_only(personas):
    from tests.alerts.test_api import firing_incident

    incident = firing_incident(personas.org)
    until = iso(timezone.now() + timedelta(hours=1))
    assert personas.member.post(f"alerts/incidents/{incident.pk}/silence", {"until": until}).status_code == 200
    silence = Silence.objects.get(incident=incident)
    listed = personas.member.get("alerts/silences").json()["results"]
    assert [(item["id"], item["incident"]) for item in listed] == [(silence.pk, incident.pk)]
    assert personas.member.patch(f"alerts/silences/{silence.pk}", {"note": "x"}).status_code == 409
    assert personas.member.delete(f"alerts/silences/{silence.pk}").status_code == 409


def test_silences_of_another_org_are_404(personas):
    theirs = Silence.objects.create(org=personas.other_org, severity="critical", starts_at=timezone.now(),
                                    until=timezone.now() + timedelta(hours=1))
    assert personas.member.get(f"alerts/silences/{theirs.pk}").status_code == 404
    assert personas.member.delete(f"alerts/silences/{theirs.pk}").status_code == 404
    assert personas.reader.post("alerts/silences", {"severity": "critical",
                                                    "until": "2099-01-01T00:00:00Z"}).status_code == 403


# --- Maintenance windows ---------------------------------------------------------------------


def test_a_recurring_window_is_created_and_changed(personas):
    response = personas.member.post("alerts/maintenance-windows", {
        "name": "patch night", "weekdays": [2, 0], "start_time": "22:30", "duration_minutes": 90,
        "timezone": "Europe/Berlin", "matchers": {"service": "db"}})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["weekdays"], body["start_time"], body["timezone"], body["starts_at"], body["org"]) == (
        [0, 2], "22:30:00", "Europe/Berlin", None, "acme")
    assert body["created_by"].startswith("token member")
    window = MaintenanceWindow.objects.get(pk=body["id"])
    assert window.recurring
    response = personas.member.patch(f"alerts/maintenance-windows/{window.pk}", {"timezone": "America/New_York"})
    assert response.status_code == 200 and response.json()["timezone"] == "America/New_York"
    assert personas.member.delete(f"alerts/maintenance-windows/{window.pk}").status_code == 204
    assert personas.member.get(f"alerts/maintenance-windows/{window.pk}").status_code == 404


def test_a_one_off_window(personas):
    start = timezone.now()
    response = personas.member.post("alerts/maintenance-windows", {
        "name": "migration", "starts_at": iso(start), "ends_at": iso(start + timedelta(hours=1))})
    assert response.status_code == 201, response.json()
    assert response.json()["start_time"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"start_time": "22:30", "weekdays": []}, "weekdays"),
    ({"start_time": "22:30", "weekdays": [1, 1]}, "weekdays"),
    ({"start_time": "22:30", "weekdays": [7]}, "weekdays"),
    ({"start_time": "22:30", "weekdays": [True]}, "weekdays"),
    ({"start_time": "22:30", "weekdays": [1], "timezone": "Mars/Olympus"}, "timezone"),
    ({"start_time": "22:30", "weekdays": [1], "timezone": "America"}, "timezone"),
    ({"start_time": "25:00", "weekdays": [1]}, "start_time"),
    ({"start_time": 2230, "weekdays": [1]}, "start_time"),
    ({"start_time": "22:30", "weekdays": [1], "duration_minutes": 0}, "duration_minutes"),
    ({"start_time": "22:30", "weekdays": [1], "duration_minutes": 10081}, "duration_minutes"),
    ({"starts_at": "2026-01-02T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    ({}, "ends_at"),
    ({"start_time": "22:30", "weekdays": [1], "rule": 12345}, "rule"),
    ({"start_time": "22:30", "weekdays": [1], "matchers": []}, "matchers"),
])
def test_bad_windows_are_400s_naming_the_field(personas, body, field):
    response = personas.member.post("alerts/maintenance-windows", {"name": "w", **body})
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()


def test_the_new_operations_are_in_the_schema(personas):
    schema = personas.staff.get("/api/schema/?format=json").json()
    prefix = "/api/v1/analytics/alerts/"
    for path, methods in {"channels": {"get", "post"}, "channels/{id}": {"get", "patch", "delete"},
                          "silences": {"get", "post"}, "silences/{id}": {"get", "patch", "delete"},
                          "maintenance-windows": {"get", "post"},
                          "maintenance-windows/{id}": {"get", "patch", "delete"}}.items():
        assert methods <= set(schema["paths"][prefix + path]), path
    assert "secret" not in schema["components"]["schemas"]["Channel"]["properties"]
    assert "409" in schema["paths"][prefix + "silences/{id}"]["patch"]["responses"]


def test_integral_numbers_are_integers_and_a_change_of_form_is_stated_whole(personas):
    rule = make_rule(personas.org, name="cpu")
    response = personas.member.post("alerts/maintenance-windows", {
        "name": "w", "weekdays": [4.0, 5], "start_time": "03:00", "rule": float(rule.pk)})
    assert response.status_code == 201, response.json()
    assert (response.json()["weekdays"], response.json()["rule"]) == ([4, 5], rule.pk)
    path = f"alerts/maintenance-windows/{response.json()['id']}"
    response = personas.member.patch(path, {"start_time": None})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"starts_at", "ends_at"}
    start = timezone.now()
    response = personas.member.patch(path, {"start_time": None, "starts_at": iso(start),
                                            "ends_at": iso(start + timedelta(hours=1))})
    assert response.status_code == 200 and response.json()["start_time"] is None
    assert personas.member.patch(path, {"start_time": "04:00"}).status_code == 400
    assert personas.member.patch(path, {"start_time": "04:00", "weekdays": [1]}).status_code == 200
