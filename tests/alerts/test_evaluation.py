"""The evaluator with controlled time: every move of a rule's group, stored with value, threshold and time."""

import pytest
from django.db import IntegrityError, transaction

from alerts.models import AlertIncident, AlertRule, IncidentEvent, breaches
from alerts.services import incidents
from alerts.sources import Sources
from analytics.services import metrics_query
from tests.alerts.factories import at, evaluate, make_rule, org, record, state_of

pytestmark = pytest.mark.django_db


def kinds(rule, **filters):
    return list(IncidentEvent.objects.filter(rule=rule, **filters).order_by("at", "id").values_list("kind", flat=True))


def test_pending_then_firing_only_after_the_duration_measured_from_pending_since():
    acme = org()
    rule = make_rule(acme, duration_seconds=120)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    state = state_of(rule)
    assert (state.status, state.pending_since, state.last_value) == ("pending", at(0), 95)
    assert not AlertIncident.objects.exists()
    # Many evaluations inside the duration do not make it fire: time does, not a count.
    for second in (10, 20, 30, 60, 90, 119):
        record(acme, "cpu.usage", 95, at(second - 5))
        evaluate(at(second), rule)
        assert state_of(rule).status == "pending"
    assert not AlertIncident.objects.exists()
    evaluate(at(120), rule)
    incident = AlertIncident.objects.get()
    assert state_of(rule).status == "firing"
    assert (incident.status, incident.triggered_at, incident.value, incident.threshold) == ("open", at(120), 95, 80)
    rule.refresh_from_db()
    assert (rule.trigger_count, rule.last_triggered_at, rule.state()) == (1, at(120), "firing")
    # The timeline starts with the pending move: why it fired.
    timeline = list(incident.events.values_list("kind", "from_status", "to_status", "value", "threshold", "at"))
    assert timeline == [("pending", "inactive", "pending", 95, 80, at(0)),
                        ("firing", "pending", "firing", 95, 80, at(120))]


def test_two_evaluations_a_duration_apart_are_enough_to_fire():
    acme = org()
    rule = make_rule(acme, duration_seconds=600)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    record(acme, "cpu.usage", 95, at(590))
    evaluate(at(600), rule)
    assert AlertIncident.objects.get().triggered_at == at(600)


def test_a_duration_of_zero_fires_on_the_first_breaching_evaluation():
    acme = org()
    rule = make_rule(acme)
    record(acme, "cpu.usage", 81, at(-1))
    evaluate(at(0), rule)
    assert AlertIncident.objects.get().status == "open"
    assert kinds(rule) == ["firing"]


def test_pending_that_clears_before_the_duration_recovers_without_an_incident():
    acme = org()
    rule = make_rule(acme, duration_seconds=300)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    record(acme, "cpu.usage", 10, at(50))
    evaluate(at(60, minutes=5), rule)  # the breaching point has left the window; the average is 10
    assert state_of(rule).status == "inactive" and state_of(rule).pending_since is None
    assert not AlertIncident.objects.exists()
    assert kinds(rule) == ["pending", "recovered"]


def test_no_resolve_inside_keep_firing_and_breaching_again_cancels_it():
    acme = org()
    rule = make_rule(acme, keep_firing_seconds=300)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    incident = AlertIncident.objects.get()
    record(acme, "cpu.usage", 10, at(400))
    evaluate(at(420), rule)  # cleared: keeps firing until 420 + 300
    state = state_of(rule)
    assert (state.status, state.keep_firing_until) == ("firing", at(720))
    for second in (480, 600, 719):
        record(acme, "cpu.usage", 10, at(second - 5))
        evaluate(at(second), rule)
        incident.refresh_from_db()
        assert incident.status == "open" and state_of(rule).status == "firing"
    record(acme, "cpu.usage", 10, at(715))
    evaluate(at(720), rule)
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_at, incident.resolved_by) == ("resolved", at(720), "")
    assert state_of(rule).status == "resolved"
    assert kinds(rule) == ["firing", "keep_firing", "resolved"]

    # A second episode: breaching again inside keep-firing cancels the deadline.
    record(acme, "cpu.usage", 500, at(1000))
    evaluate(at(1010), rule)
    second = AlertIncident.objects.unresolved().get()
    record(acme, "cpu.usage", 1, at(1400))
    record(acme, "cpu.usage", 1, at(1401))
    evaluate(at(1410), rule)
    assert state_of(rule).keep_firing_until == at(1710)
    record(acme, "cpu.usage", 500, at(1500))
    evaluate(at(1510), rule)
    assert state_of(rule).keep_firing_until is None
    evaluate(at(1800), rule)  # still breaching (the 500 is in the window): the old deadline does not resolve it
    second.refresh_from_db()
    assert second.status == "open"
    assert kinds(rule, incident=second) == ["firing", "keep_firing", "breaching"]


def test_no_data_ok_resolves_the_group():
    acme = org()
    rule = make_rule(acme, no_data="ok")
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    evaluate(at(600), rule)  # nothing in the window any more
    incident = AlertIncident.objects.get()
    assert incident.status == "resolved"
    event = incident.events.get(kind="resolved")
    assert event.value is None and event.threshold == 80


def test_no_data_alerting_fires_with_a_null_value():
    acme = org()
    rule = make_rule(acme, no_data="alerting", duration_seconds=60)
    evaluate(at(0), rule)
    assert state_of(rule).status == "pending"
    evaluate(at(60), rule)
    incident = AlertIncident.objects.get()
    assert (incident.status, incident.value) == ("open", None)
    # Data comes back, below the threshold: it resolves.
    record(acme, "cpu.usage", 5, at(100))
    evaluate(at(120), rule)
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_no_data_alerting_on_a_grouped_rule_alerts_as_a_whole_then_clears_when_data_returns():
    acme = org()
    rule = make_rule(acme, no_data="alerting", group_by=["host"])
    evaluate(at(0), rule)
    whole = AlertIncident.objects.get()
    assert whole.group == {}
    record(acme, "cpu.usage", 5, at(50), host="a")
    evaluate(at(60), rule)
    whole.refresh_from_db()
    assert whole.status == "resolved"
    assert not AlertIncident.objects.unresolved().exists()


def test_no_data_keep_leaves_pending_and_firing_as_they_are():
    acme = org()
    firing = make_rule(acme, no_data="keep")
    pending = make_rule(acme, no_data="keep", duration_seconds=120)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), firing, pending)
    evaluate(at(3600), firing, pending)  # no data for an hour
    assert state_of(firing).status == "firing"
    assert AlertIncident.objects.get(rule=firing).status == "open"
    assert state_of(pending).status == "pending"  # and not firing: no data is not breaching either
    assert kinds(pending) == ["pending"]


def test_no_data_keep_on_a_rule_that_never_had_data_does_nothing():
    rule = make_rule(org(), no_data="keep")
    evaluate(at(0), rule)
    assert not rule.group_states.exists() and not AlertIncident.objects.exists()


def test_group_by_gives_one_incident_per_group():
    acme = org()
    rule = make_rule(acme, group_by=["host"])
    for host, value in (("web-1", 95), ("web-2", 97), ("web-3", 20)):
        record(acme, "cpu.usage", value, at(-10), host=host)
    evaluate(at(0), rule)
    open_groups = {i.group["host"]: i for i in AlertIncident.objects.unresolved()}
    assert set(open_groups) == {"web-1", "web-2"}
    assert open_groups["web-2"].value == 97
    record(acme, "cpu.usage", 99, at(30), host="web-1")
    record(acme, "cpu.usage", 10, at(30), host="web-2")
    record(acme, "cpu.usage", 10, at(31), host="web-2")
    record(acme, "cpu.usage", 10, at(32), host="web-2")
    evaluate(at(60), rule)  # web-2 averages (97 + 30) / 4 < 80
    assert {i.group["host"] for i in AlertIncident.objects.unresolved()} == {"web-1"}
    assert AlertIncident.objects.count() == 2
    assert state_of(rule, host="web-2").status == "resolved"
    assert state_of(rule, host="web-1").status == "firing"


def test_tag_filters_narrow_the_series():
    acme = org()
    rule = make_rule(acme, tags={"host": "web-1"})
    record(acme, "cpu.usage", 95, at(-10), host="web-2")
    record(acme, "cpu.usage", 10, at(-10), host="web-1")
    evaluate(at(0), rule)
    assert not AlertIncident.objects.exists()


def test_rules_see_only_their_org_and_platform_rules_see_all():
    acme, globex = org("acme"), org("globex")
    acme_rule = make_rule(acme)
    platform_rule = make_rule(None, name="platform")
    record(globex, "cpu.usage", 99, at(-10))
    evaluate(at(0), acme_rule, platform_rule)
    assert list(AlertIncident.objects.values_list("rule_name", "org")) == [("platform", None)]


@pytest.mark.parametrize(("aggregation", "expected"), [
    ("avg", 30), ("sum", 90), ("count", 3), ("min", 10), ("max", 50), ("p50", 30), ("p95", 48), ("p99", 49.6),
    ("rate", 90 / 300),
])
def test_each_aggregation_gives_its_value(aggregation, expected):
    acme = org()
    rule = make_rule(acme, aggregation=aggregation, condition_operator="gte", threshold=-1)
    for second, value in ((-30, 10), (-20, 30), (-10, 50)):
        record(acme, "cpu.usage", value, at(second))
    evaluate(at(0), rule)
    assert AlertIncident.objects.get().value == pytest.approx(expected)


def test_operators_and_the_eq_tolerance():
    assert breaches("gt", 5.0001, 5) and not breaches("gt", 5, 5)
    assert breaches("gte", 5, 5) and not breaches("gte", 4.99, 5)
    assert breaches("lt", 4, 5) and not breaches("lt", 5, 5)
    assert breaches("lte", 5, 5) and not breaches("lte", 5.01, 5)
    # eq: |value - threshold| <= 1e-9 * max(1, |threshold|)
    assert breaches("eq", 0.1 + 0.2, 0.3)
    assert breaches("eq", 1e-10, 0) and not breaches("eq", 2e-9, 0)
    assert breaches("eq", 1e12 + 100, 1e12) and not breaches("eq", 1e12 + 10_000, 1e12)


def test_rules_on_the_same_metric_and_window_share_one_query(monkeypatch):
    acme = org()
    calls = []
    real = metrics_query.grouped_statistics

    def counting(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(metrics_query, "grouped_statistics", counting)
    rules = [make_rule(acme, aggregation=aggregation, threshold=threshold)
             for aggregation in ("avg", "max", "p95", "rate") for threshold in (10, 50, 90)]
    rules.append(make_rule(acme, metric_name="queue.depth"))
    rules.append(make_rule(acme, window_seconds=600))
    record(acme, "cpu.usage", 60, at(-10))
    summary = evaluate(at(0), *rules)
    assert sorted(calls) == ["cpu.usage", "cpu.usage", "queue.depth"]
    assert (summary.rules, summary.queries, summary.opened) == (14, 3, 6)  # avg, max, p95 > 10 and > 50


def test_a_failing_query_puts_its_rule_in_error_and_the_others_go_on(monkeypatch):
    acme = org()
    broken = make_rule(acme, metric_name="broken.metric", name="broken")
    healthy = make_rule(acme, name="fine")
    record(acme, "cpu.usage", 99, at(-10))
    real_fetch = Sources.fetch

    def fetch(self, metric_name, **kwargs):
        if metric_name == "broken.metric":
            raise RuntimeError("the database went away")
        return real_fetch(self, metric_name, **kwargs)

    monkeypatch.setattr(Sources, "fetch", fetch)
    summary = evaluate(at(0))
    broken.refresh_from_db()
    assert summary.errors == 1
    assert broken.state() == "error"
    assert broken.last_error == "RuntimeError: the database went away" and broken.error_since == at(0)
    assert AlertIncident.objects.get().rule == healthy
    evaluate(at(60))
    broken.refresh_from_db()
    assert broken.error_since == at(0)  # still failing since the first time
    assert kinds(broken) == ["error"]  # entering the error state is one move, not one per pass

    monkeypatch.setattr(Sources, "fetch", real_fetch)
    evaluate(at(120))
    broken.refresh_from_db()
    assert (broken.last_error, broken.error_since, broken.state()) == ("", None, "inactive")
    assert kinds(broken) == ["error", "error_cleared"]


def test_a_rule_failing_after_its_query_is_isolated_too(monkeypatch):
    acme = org()
    first, second = make_rule(acme, name="first"), make_rule(acme, name="second")
    record(acme, "cpu.usage", 99, at(-10))
    real_step = AlertRule.is_breaching

    def step(self, value):
        if self.name == "first":
            raise ValueError("bad rule")
        return real_step(self, value)

    monkeypatch.setattr(AlertRule, "is_breaching", step)
    evaluate(at(0), first, second)
    first.refresh_from_db()
    assert first.last_error == "ValueError: bad rule"
    assert AlertIncident.objects.get().rule == second


def test_a_manual_resolve_opens_a_new_incident_only_after_the_duration_again():
    acme = org()
    rule = make_rule(acme, duration_seconds=120)
    for second in range(-10, 1000, 30):
        record(acme, "cpu.usage", 95, at(second))  # breaching all along
    evaluate(at(0), rule)
    evaluate(at(120), rule)
    first = AlertIncident.objects.get()
    incidents.resolve(first.pk, actor="ops", note="restarted the worker", now=at(130))
    assert state_of(rule).status == "resolved"
    evaluate(at(180), rule)
    assert state_of(rule).status == "pending" and state_of(rule).pending_since == at(180)
    evaluate(at(299), rule)
    assert AlertIncident.objects.count() == 1
    evaluate(at(300), rule)
    second = AlertIncident.objects.unresolved().get()
    assert second.pk != first.pk and second.triggered_at == at(300)
    assert kinds(rule, incident=second) == ["pending", "firing"]
    assert list(first.events.values_list("kind", "actor", "note")) == [
        ("pending", "", "fires at 2026-03-10T12:02:00+00:00 if it holds"), ("firing", "", ""),
        ("resolved", "ops", "restarted the worker")]


def test_a_value_hovering_at_the_threshold_opens_one_incident_per_reopen_period():
    acme = org()
    rule = make_rule(acme, window_seconds=60, reopen_after_seconds=3600)
    # Above, below, above, ... every minute for two hours: without the guard, one incident every two minutes.
    for minute in range(0, 120):
        record(acme, "cpu.usage", 81 if minute % 2 == 0 else 79, at(minutes=minute, seconds=1))
        evaluate(at(minutes=minute, seconds=30), rule)
    opened = list(AlertIncident.objects.order_by("triggered_at").values_list("triggered_at", flat=True))
    # Fired at 0:00, resolved at 0:01; the next breach waits until an hour after that resolve.
    assert opened == [at(30), at(minutes=62, seconds=30)]
    held = IncidentEvent.objects.filter(rule=rule, kind="pending").order_by("at").first()
    assert held.at == at(minutes=2, seconds=30)
    assert held.note == ("fires at 2026-03-10T13:01:30+00:00 if it holds (resolved at 2026-03-10T12:01:30+00:00: "
                         "no new incident within reopen_after_seconds=3600)")


def test_a_breach_that_holds_through_the_reopen_period_fires_at_its_end():
    acme = org()
    rule = make_rule(acme, reopen_after_seconds=600)
    record(acme, "cpu.usage", 95, at(-1))
    evaluate(at(0), rule)
    first = AlertIncident.objects.get()
    incidents.resolve(first.pk, actor="ops", note="looked fine", now=at(60))
    for second in range(90, 660, 60):
        record(acme, "cpu.usage", 95, at(second - 1))
        evaluate(at(second), rule)
        assert AlertIncident.objects.count() == 1 and state_of(rule).status == "pending"
    record(acme, "cpu.usage", 95, at(659))
    evaluate(at(660), rule)  # 600 s after the manual resolve
    second = AlertIncident.objects.unresolved().get()
    assert second.triggered_at == at(660)
    assert kinds(rule, incident=second) == ["pending", "firing"]


def test_without_a_reopen_period_a_manual_resolve_of_a_breaching_rule_reopens_at_the_next_pass():
    acme = org()
    rule = make_rule(acme)
    record(acme, "cpu.usage", 95, at(-1))
    evaluate(at(0), rule)
    incidents.resolve(AlertIncident.objects.get().pk, actor="ops", now=at(10))
    evaluate(at(60), rule)
    assert AlertIncident.objects.unresolved().get().triggered_at == at(60)


def test_one_unresolved_incident_per_rule_and_group_is_a_database_constraint():
    acme = org()
    rule = make_rule(acme)
    fields = {"rule": rule, "rule_name": rule.name, "org": acme, "group_key": "{}", "severity": "warning",
              "threshold": 1, "triggered_at": at(0)}
    AlertIncident.objects.create(**fields)
    AlertIncident.objects.create(**{**fields, "status": "resolved"})
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertIncident.objects.create(**fields)


def test_an_evaluator_that_loses_the_race_adopts_the_incident_it_finds():
    from alerts.services.evaluation import _open_incident

    acme = org()
    rule = make_rule(acme)
    state = rule.group_states.create(group_key="{}", group={})
    first = _open_incident(rule, state, {}, 95.0, at(0))
    again = _open_incident(rule, state, {}, 96.0, at(1))  # the constraint refuses a second one
    assert again.pk == first.pk
    assert AlertIncident.objects.count() == 1
    rule.refresh_from_db()
    assert rule.trigger_count == 1


def test_a_pass_with_an_older_clock_changes_nothing():
    acme = org()
    rule = make_rule(acme, keep_firing_seconds=0)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    evaluate(at(-3600), rule)  # a late evaluator: no data in its window, but it must not resolve
    assert AlertIncident.objects.get().status == "open"


def test_disabled_rules_are_not_evaluated():
    acme = org()
    make_rule(acme, enabled=False)
    record(acme, "cpu.usage", 95, at(-10))
    summary = evaluate(at(0))
    assert not AlertIncident.objects.exists()
    assert summary.rules == 1  # the default "service unhealthy" rule


def test_an_expired_silence_returns_the_incident_to_its_earlier_status():
    acme = org()
    rule = make_rule(acme)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    incident = AlertIncident.objects.get()
    incidents.acknowledge(incident.pk, actor="ops", now=at(10))
    incidents.silence(incident.pk, until=at(600), actor="ops", note="deploying", now=at(20))
    record(acme, "cpu.usage", 95, at(590))
    evaluate(at(599), rule)
    incident.refresh_from_db()
    assert incident.status == "silenced"
    evaluate(at(600), rule)
    incident.refresh_from_db()
    assert (incident.status, incident.silenced_until) == ("acknowledged", None)
    assert list(incident.events.values_list("kind", flat=True)) == [
        "firing", "acknowledged", "silenced", "unsilenced"]


def test_skill_success_rate_and_p95_latency_come_from_the_skill_series():
    acme = org()
    for index in range(10):
        success = "true" if index < 7 else "false"
        record(acme, "skill.executions", 1, at(-100 + index), skill_id="parse_json", success=success)
        record(acme, "skill.latency_ms", 100 + index * 10, at(-100 + index), skill_id="parse_json",
               success=success)
    record(acme, "skill.executions", 1, at(-50), skill_id="other", success="true")
    record(acme, "skill.latency_ms", 5, at(-50), skill_id="other", success="true")
    success = make_rule(acme, metric_name="skill.success_rate", condition_operator="lt", threshold=0.9,
                        group_by=["skill_id"])
    latency = make_rule(acme, metric_name="skill.p95_latency_ms", condition_operator="gt", threshold=150,
                        tags={"skill_id": "parse_json"})
    evaluate(at(0), success, latency)
    by_rule = {i.rule_id: i for i in AlertIncident.objects.all()}
    assert by_rule[success.pk].group == {"skill_id": "parse_json"}
    assert by_rule[success.pk].value == pytest.approx(0.7)
    assert by_rule[latency.pk].value == pytest.approx(100 + 0.95 * 9 * 10)
    assert AlertIncident.objects.count() == 2  # "other" succeeds every time


def test_skill_health_score_asks_the_skill_health_service():
    from analytics.services.skills import set_health_score

    acme = org()
    set_health_score(acme, "parse_json", 20.0, source="test", recorded_at=at(-3600))
    rule = make_rule(acme, metric_name="skill.health_score", condition_operator="lt", threshold=50,
                     tags={"skill_id": "parse_json"})
    evaluate(at(0), rule)
    assert AlertIncident.objects.get().value == 20.0


def test_a_deleted_rule_keeps_its_incidents_resolved_under_its_name():
    from alerts.services.rules import delete_rule

    acme = org()
    rule = make_rule(acme, name="doomed")
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    delete_rule(rule, actor="ops", now=at(30))
    incident = AlertIncident.objects.get()
    assert (incident.rule, incident.rule_name, incident.status, incident.resolved_by) == (
        None, "doomed", "resolved", "ops")
    assert "rule deleted" in incident.notes


def test_changing_what_a_rule_watches_resolves_its_incidents():
    import copy

    from alerts.services.rules import rule_changed

    acme = org()
    rule = make_rule(acme)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    previous = copy.copy(rule)
    rule.threshold = 99
    rule.save()
    assert rule_changed(rule, previous, actor="ops", now=at(10)) == 0  # a new condition: judged next pass
    previous = copy.copy(rule)
    rule.group_by = ["host"]
    rule.save()
    assert rule_changed(rule, previous, actor="ops", now=at(20)) == 1
    assert not rule.group_states.exists()
    assert AlertIncident.objects.get().status == "resolved"


def test_event_rows_can_be_claimed_once_by_a_notifier():
    acme = org()
    rule = make_rule(acme)
    record(acme, "cpu.usage", 95, at(-10))
    evaluate(at(0), rule)
    event = IncidentEvent.objects.get(kind="firing")
    twin = IncidentEvent.objects.get(pk=event.pk)
    assert event.claim(at(1)) is True
    assert twin.claim(at(2)) is False
    event.refresh_from_db()
    assert event.claimed_at == at(1)


def test_the_window_ends_at_now_and_spans_window_seconds():
    acme = org()
    rule = make_rule(acme, window_seconds=60)
    record(acme, "cpu.usage", 95, at(-61))  # just outside
    evaluate(at(0), rule)
    assert not AlertIncident.objects.exists()
    record(acme, "cpu.usage", 95, at(-60))  # the window includes both ends
    evaluate(at(0), rule)
    assert AlertIncident.objects.exists()
