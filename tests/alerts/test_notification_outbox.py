"""The notification outbox (docs/notifications.md): what is planned, and delivery with retries, to a real
local HTTP receiver. Time is controlled: every pass runs at a chosen ``now``; nothing sleeps."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections

from alerts.models import AlertIncident, IncidentStatus, Notification, NotificationChannel
from alerts.notifications import outbox
from alerts.services import incidents
from tests.alerts.factories import at, evaluate, make_rule, org, record
from tests.receivers import start_http_receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    started = []

    def start(statuses=()):
        server = start_http_receiver(statuses=list(statuses))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def webhook(url, *, organization=None, rules=(), default_for=(), repeat=0, name="hook", group_wait=0):
    channel = NotificationChannel.objects.create(org=organization, name=name, kind="webhook", config={"url": url},
                                                 secret="s3cret", default_for=list(default_for),
                                                 repeat_interval_seconds=repeat, timeout_seconds=2,
                                                 group_wait_seconds=group_wait)
    channel.rules.set(rules)
    return channel


def firing_incident(acme, moment=None):
    rule = make_rule(acme, name="cpu high", severity="critical")
    record(acme, "cpu.usage", 95, (moment or at(0)) - timedelta(seconds=30))
    evaluate(moment or at(0), rule)
    return rule, AlertIncident.objects.get(rule=rule)


def bodies(server) -> list[dict]:
    return [json.loads(request.body) for request in server.requests]


def test_a_firing_incident_is_sent_once_to_each_routed_channel_and_its_resolve_follows(receiver):
    acme = org()
    server = receiver()
    rule, incident = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    assert outbox.run(at(1)).as_dict() == {"planned": 1, "sent": 1, "retried": 0, "failed": 0}
    assert outbox.run(at(2)).planned == 0  # planned once, however many passes
    (firing,) = bodies(server)
    assert firing["kind"] == "firing" and firing["rule"] == "cpu high" and firing["severity"] == "critical"

    incidents.resolve(incident.pk, actor="ops", note="fixed", now=at(3))
    assert outbox.run(at(4)).sent == 1
    assert [body["kind"] for body in bodies(server)] == ["firing", "resolved"]
    assert outbox.run(at(5)).planned == 0


def test_routing_uses_the_rules_channels_else_the_defaults_for_its_severity(receiver):
    acme, globex = org(), org("globex")
    server = receiver()
    _, incident = firing_incident(acme)
    mine = webhook(server.url, organization=acme, default_for=["critical"], name="acme default")
    platform = webhook(server.url, default_for=["critical"], name="platform default")
    webhook(server.url, organization=globex, default_for=["critical"], name="another org")
    webhook(server.url, organization=acme, default_for=["warning"], name="other severity")
    assert {channel.name for channel in outbox.channels_for(incident)} == {mine.name, platform.name}
    named = webhook(server.url, organization=acme, rules=[incident.rule], name="named")
    assert outbox.channels_for(incident) == [named]


def test_a_receiver_that_fails_three_times_then_succeeds_gets_exactly_one_successful_delivery(receiver):
    acme = org()
    server = receiver(statuses=[500, 503, 502, 200])
    rule, _ = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    moment = at(1)
    outbox.run(moment)
    for _ in range(5):
        row = Notification.objects.get()
        moment = max(moment, row.next_attempt_at) + timedelta(seconds=1)  # past each backoff
        outbox.run(moment)
    row = Notification.objects.get()
    assert row.status == "sent" and row.attempts == 4 and row.last_error == ""
    assert [request.status for request in server.requests] == [500, 503, 502, 200]
    assert len(server.requests) == 4  # nothing sent after the success


def test_backoff_doubles_and_a_permanent_error_stops_at_once(receiver):
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]
    acme = org()
    server = receiver(statuses=[404])
    rule, _ = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    assert outbox.run(at(1)).failed == 1
    row = Notification.objects.get()
    assert row.status == "failed" and row.attempts == 1 and "404" in row.last_error
    outbox.run(at(3600))
    assert len(server.requests) == 1


def test_a_worker_that_died_mid_send_loses_nothing(receiver):
    acme = org()
    server = receiver()
    rule, _ = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    outbox.plan(at(1))
    row = Notification.objects.get()
    assert row.claim(at(1), timedelta(seconds=62))  # a worker claims it ... and dies before marking it sent
    assert outbox.deliver(at(30)).sent == 0  # its lease still runs: nobody else takes the row
    assert outbox.deliver(at(64)).sent == 1  # the lease ended: the row is sent
    assert Notification.objects.get().status == "sent" and len(server.requests) == 1


def test_two_workers_deliver_each_row_once(receiver):
    acme = org()
    server = receiver()
    channels = [webhook(server.url, organization=acme, default_for=["critical"], name=f"hook {i}")
                for i in range(3)]
    for index in range(5):
        rule = make_rule(acme, name=f"rule {index}", severity="critical")
        record(acme, "cpu.usage", 95, at(-30), host=f"h{index}")
        evaluate(at(0), rule)
    assert outbox.plan(at(1)) == 5 * len(channels)
    barrier = threading.Barrier(2)

    def worker():
        try:
            barrier.wait()
            outbox.deliver(at(2))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Notification.objects.filter(status="sent").count() == 15
    ids = [body["notification_id"] for body in bodies(server)]
    assert len(ids) == 15 and len(set(ids)) == 15


def test_a_silenced_incident_is_not_notified_until_its_silence_ends_and_its_resolve_is_always_sent(receiver):
    acme = org()
    server = receiver()
    rule, incident = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    incidents.silence(incident.pk, until=at(600), actor="ops", note="deploy", now=at(0.5))
    assert outbox.run(at(1)).planned == 0 and not server.requests
    outbox.run(at(2))
    (held,) = incident.events.filter(kind="not_notified")  # the decision is on the timeline, once
    assert held.note.startswith("notification held back: silenced until")
    incidents.lift_expired_silences(at(601))
    assert outbox.run(at(602)).sent == 1  # still firing when the silence ended: notified now

    incidents.silence(incident.pk, until=at(1200), actor="ops", note="again", now=at(603))
    incidents.resolve(incident.pk, actor="ops", note="fixed", now=at(700))
    assert outbox.run(at(701)).sent == 1  # the resolve is the contract, silenced in between or not
    assert [body["kind"] for body in bodies(server)] == ["firing", "resolved"]


def test_a_firing_never_sent_is_cancelled_by_its_resolve_and_nothing_is_sent(receiver):
    acme = org()
    server = receiver(statuses=[500])
    rule, incident = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule])
    assert outbox.run(at(1)).retried == 1
    incidents.resolve(incident.pk, actor="ops", note="blip", now=at(2))
    outbox.run(at(3600))
    assert Notification.objects.get().status == "cancelled"
    assert len(server.requests) == 1
    (decision,) = incident.events.filter(kind="not_notified").values_list("note", flat=True)
    assert decision.startswith("firing to hook not sent: resolved before it was due")


def test_repeats_while_open_stop_when_acknowledged(receiver):
    acme = org()
    server = receiver()
    rule, incident = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule], repeat=3600)
    outbox.run(at(1))
    assert outbox.run(at(1800)).planned == 0
    assert outbox.run(at(3602)).sent == 1
    assert [body["kind"] for body in bodies(server)] == ["firing", "repeat"]
    incidents.acknowledge(incident.pk, actor="ops", note="on it", now=at(3700))
    assert outbox.run(at(3 * 3600)).planned == 0
    assert outbox.run(at(5 * 3600)).planned == 0
    assert AlertIncident.objects.get().status == IncidentStatus.ACKNOWLEDGED
    # The decision not to repeat is on the timeline, once per acknowledgement, when the repeat was due.
    (decision,) = incident.events.filter(kind="not_notified").values_list("at", "note")
    assert decision == (at(3 * 3600), "repeat to hook not sent: acknowledged by ops; no repeats until it fires anew")


def test_an_incident_no_channel_routes_says_so_on_its_timeline_once(receiver):
    acme = org()
    server = receiver()
    _, incident = firing_incident(acme)
    webhook(server.url, organization=acme, default_for=["warning"])  # not for this critical incident
    assert outbox.run(at(1)).planned == 0 and outbox.run(at(2)).planned == 0
    (decision,) = incident.events.filter(kind="not_notified").values_list("note", flat=True)
    assert decision == ("not notified: no channel routes it (the rule names no enabled channel, and no channel is "
                        "the default for critical)")
    assert server.requests == []


def test_the_admin_sends_a_test_notification(receiver, admin_client):
    server = receiver()
    channel = webhook(server.url)
    response = admin_client.post("/admin/alerts/notificationchannel/", {
        "action": "send_test_notification", "_selected_action": [channel.pk]}, follow=True)
    assert response.status_code == 200
    assert "test notification sent" in response.content.decode()
    (body,) = bodies(server)
    assert body["kind"] == "test"
    assert Notification.objects.get().status == "sent"


def test_the_incident_page_shows_its_notifications_with_their_attempts(receiver, admin_client):
    acme = org()
    server = receiver(statuses=[500, 200])
    rule, incident = firing_incident(acme)
    webhook(server.url, organization=acme, rules=[rule], name="ops hook")
    outbox.run(at(1))
    page = admin_client.get(f"/admin/alerts/alertincident/{incident.pk}/change/").content.decode()
    assert "ops hook" in page and "500" in page


def general_silence(*, until, starts=None, **match):
    from alerts.models import Silence

    return Silence.objects.create(starts_at=starts or at(0), until=until, created_by="ops", note="deploy", **match)


def test_a_general_silence_holds_back_what_it_matches_then_releases_it_and_never_the_resolve(receiver):
    acme = org()
    server = receiver()
    rule, incident = firing_incident(acme)  # group {} and rule labels {}; severity critical
    other_rule = make_rule(acme, name="disk full", severity="warning")
    record(acme, "cpu.usage", 95, at(-30))
    evaluate(at(0), other_rule)
    hook = webhook(server.url, organization=acme, rules=[rule, other_rule])
    silence = general_silence(until=at(600), severity="critical")
    assert outbox.run(at(1)).sent == 1  # only the warning
    assert [body["rule"] for body in bodies(server)] == ["disk full"]
    outbox.run(at(2))
    (held,) = incident.events.filter(kind="not_notified")
    assert f"silence #{silence.pk}" in held.note and "deploy" in held.note
    assert outbox.run(at(601)).sent == 1  # the silence is over and the incident still fires
    assert [body["rule"] for body in bodies(server)][-1] == "cpu high"

    general_silence(starts=at(602), until=at(1200), rule=rule)
    incidents.resolve(incident.pk, actor="ops", note="fixed", now=at(700))
    assert outbox.run(at(701)).sent == 1  # silenced or not, the resolve of a sent firing is sent
    assert bodies(server)[-1]["kind"] == "resolved"
    assert hook.notifications.count() == 3


def test_silence_matchers_rule_severity_labels_and_org(receiver):
    from alerts.models import Silence

    acme, globex = org(), org("globex")
    rule = make_rule(acme, name="cpu high", severity="critical", group_by=["host"], labels={"team": "db"})
    record(acme, "cpu.usage", 95, at(-30), host="h1")
    evaluate(at(0), rule)
    incident = AlertIncident.objects.get(rule=rule)
    assert incident.group == {"host": "h1"}

    def matches(**match):
        return Silence(starts_at=at(0), until=at(60), **match).matches(incident)

    assert matches(matchers={"host": "h1"}) and matches(matchers={"team": "db", "host": "h1"})
    assert not matches(matchers={"host": "h2"}) and not matches(matchers={"team": "web"})
    assert matches(rule=rule) and matches(severity="critical") and not matches(severity="warning")
    assert matches(org=acme, matchers={"team": "db"}) and not matches(org=globex, matchers={"team": "db"})


def test_silences_are_made_and_ended_in_the_admin(admin_client):
    from django.utils import timezone

    from alerts.models import Silence

    assert admin_client.get("/admin/alerts/silence/add/").status_code == 200
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    form = {"starts_at_0": "2020-01-01", "starts_at_1": "12:00:00", "until_0": tomorrow, "until_1": "14:00:00",
            "matchers": '{"host": "h1"}', "severity": "", "note": "maintenance"}
    response = admin_client.post("/admin/alerts/silence/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    silence = Silence.objects.get()
    assert silence.matchers == {"host": "h1"} and silence.created_by == "admin"
    refused = admin_client.post("/admin/alerts/silence/add/", {**form, "matchers": "{}"})
    assert "a silence of everything is refused" in refused.content.decode()
    admin_client.post("/admin/alerts/silence/", {"action": "end_silences", "_selected_action": [silence.pk]})
    silence.refresh_from_db()
    assert silence.ended_at is not None


def test_a_recurring_maintenance_window_keeps_its_local_time_across_a_dst_change():
    from datetime import UTC, datetime, time

    from alerts.models import MaintenanceWindow

    # Every day 09:00-10:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer (DST began 2026-03-29).
    window = MaintenanceWindow(name="daily", weekdays=list(range(7)), start_time=time(9, 0), duration_minutes=60,
                               timezone="Europe/Berlin")
    window.full_clean()
    assert window.occurrence(datetime(2026, 3, 28, 8, 30, tzinfo=UTC)) == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert window.occurrence(datetime(2026, 3, 28, 7, 30, tzinfo=UTC)) is None
    assert window.occurrence(datetime(2026, 3, 30, 7, 30, tzinfo=UTC)) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert window.occurrence(datetime(2026, 3, 30, 8, 30, tzinfo=UTC)) is None
    # Only on its weekdays; and one that runs past midnight is on until its end the next day.
    sunday_night = MaintenanceWindow(name="backup", weekdays=[6], start_time=time(23, 0), duration_minutes=120,
                                     timezone="UTC")
    assert sunday_night.occurrence(datetime(2026, 3, 30, 0, 30, tzinfo=UTC)) == datetime(2026, 3, 29, 23, 0,
                                                                                          tzinfo=UTC)
    assert sunday_night.occurrence(datetime(2026, 3, 31, 0, 30, tzinfo=UTC)) is None


def test_maintenance_windows_are_checked_when_saved():
    from datetime import time

    from django.core.exceptions import ValidationError

    from alerts.models import MaintenanceWindow

    for fields, field in (({"start_time": time(9), "weekdays": [7]}, "weekdays"),
                          ({"start_time": time(9), "weekdays": [1], "timezone": "Mars/Olympus"}, "timezone"),
                          ({}, "ends_at")):
        with pytest.raises(ValidationError) as error:
            MaintenanceWindow(name="w", **fields).full_clean()
        assert field in error.value.message_dict


def test_a_maintenance_window_holds_back_its_services_notifications_and_releases_them_after(receiver):
    from alerts.models import MaintenanceWindow

    acme = org()
    server = receiver()
    rule = make_rule(acme, name="db down", severity="critical", group_by=["service"])
    record(acme, "cpu.usage", 95, at(-30), service="platform-database")
    record(acme, "cpu.usage", 95, at(-30), service="web")
    evaluate(at(0), rule)
    webhook(server.url, organization=acme, rules=[rule])
    window = MaintenanceWindow.objects.create(name="backup", matchers={"service": "platform-database"},
                                              starts_at=at(-60), ends_at=at(600))
    assert outbox.run(at(1)).sent == 1
    assert [body["group"] for body in bodies(server)] == [{"service": "web"}]
    held = AlertIncident.objects.get(group_key__contains="platform-database").events.get(kind="not_notified")
    assert f"maintenance window #{window.pk}" in held.note
    assert outbox.run(at(601)).sent == 1  # the window is over; the database still fires
    assert bodies(server)[-1]["group"] == {"service": "platform-database"}


def test_an_unhealthy_service_inhibits_the_rules_that_depend_on_it_and_its_own_page_goes_out(receiver):
    from monitoring.models import Service, ServiceTransition

    acme = org()
    server = receiver()
    database = Service.objects.create(name="platform-database", check_kind="tcp", target="127.0.0.1:1")
    Service.objects.filter(pk=database.pk).update(status="unhealthy")
    ServiceTransition.objects.create(service=database, from_status="healthy", to_status="unhealthy", at=at(-120))
    dependent = make_rule(acme, name="api errors", severity="critical", labels={"depends_on_service": database.name})
    independent = make_rule(acme, name="queue deep", severity="critical", metric_name="queue.depth")
    record(acme, "cpu.usage", 95, at(-30))
    record(acme, "queue.depth", 95, at(-30))
    evaluate(at(0), dependent, independent)
    webhook(server.url, organization=acme, rules=[dependent, independent])
    assert outbox.run(at(1)).sent == 1
    assert [body["rule"] for body in bodies(server)] == ["queue deep"]
    held = AlertIncident.objects.get(rule=dependent).events.get(kind="not_notified")
    assert "inhibited: service platform-database unhealthy since" in held.note

    Service.objects.filter(pk=database.pk).update(status="healthy")  # the outage is over
    assert outbox.run(at(2)).sent == 1
    assert bodies(server)[-1]["rule"] == "api errors"


def test_groups_of_one_rule_that_fire_together_are_told_in_one_message_after_the_group_wait(receiver):
    acme = org()
    server = receiver()
    rule = make_rule(acme, name="cpu high", severity="critical", group_by=["host"])
    for host in ("h1", "h2", "h3"):
        record(acme, "cpu.usage", 95, at(-30), host=host)
    evaluate(at(0), rule)
    webhook(server.url, organization=acme, rules=[rule], group_wait=30)
    assert outbox.run(at(1)).as_dict() == {"planned": 3, "sent": 0, "retried": 0, "failed": 0}  # waiting
    assert outbox.run(at(32)).sent == 1  # one message for the three groups
    (body,) = bodies(server)
    assert body["title"] == "[FIRING] critical: cpu high (3 groups)"
    assert {tuple(item["group"].items()) for item in body["grouped"]} | {tuple(body["group"].items())} == {
        (("host", "h1"),), (("host", "h2"),), (("host", "h3"),)}
    assert "host=h1: 95" in body["summary"] and "host=h3: 95" in body["summary"]
    assert Notification.objects.filter(status="sent").count() == 3
    # Each incident's timeline says which others its firing went out with.
    ids = sorted(AlertIncident.objects.values_list("pk", flat=True))
    for incident in AlertIncident.objects.all():
        (note,) = incident.events.filter(kind="grouped").values_list("note", flat=True)
        others = ", ".join(f"#{pk}" for pk in ids if pk != incident.pk)
        assert note == f"firing sent to hook in one message with incident(s) {others} of the same rule"
