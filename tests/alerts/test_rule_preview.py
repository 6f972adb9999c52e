"""The rule preview (alerts/services/preview.py): the incidents it shows are the ones the real evaluator opens when
run at each of the preview's steps over the same recorded data, and it writes nothing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import AlertIncident, AlertRule, AlertRuleGroupState, IncidentEvent, group_key
from alerts.services.preview import (
    MAX_CHART_POINTS,
    MAX_EVALUATIONS,
    PreviewUnavailable,
    chart_points,
    evaluation_moments,
    evaluation_step,
    preview_rule,
)
from alerts.sources import Sources, group_of, rule_scope, window_ending
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from tests.alerts.factories import at, evaluate, make_rule, org

pytestmark = pytest.mark.django_db

DAY = 24 * 60
NOW = at(minutes=DAY)  # previews cover T0 .. T0 + 1 day


def minutes(organization, values, *, start=0, name="cpu.usage", **tags):
    """One event a minute, at half past (never on a step's boundary), from minute ``start`` after T0."""
    ingest_metric_items(organization, [
        MetricItem(name, float(value), "gauge", "", "", tags, at(30, minutes=start + index))
        for index, value in enumerate(values)])


def previewed(preview):
    return sorted((group_key(i.group), i.started_at, i.resolved_at) for i in preview.incidents)


def evaluated(rule, days=1, now=NOW):
    """The incidents the real evaluator opens, run at each moment of the preview."""
    for moment in evaluation_moments(rule.window_seconds, days, now):
        evaluate(moment, rule)
    return sorted((i.group_key, i.triggered_at, i.resolved_at) for i in AlertIncident.objects.filter(rule=rule))


def agreed(rule, days=1, now=NOW):
    """The preview's incidents, after checking the evaluator opens the same."""
    preview = preview_rule(rule, days=days, now=now)
    assert previewed(preview) == evaluated(rule, days, now)
    assert preview.incident_count == len(preview.incidents)
    return preview


def test_a_breach_shorter_than_the_duration_opens_nothing():
    acme = org()
    minutes(acme, [10] * 60 + [95] * 8 + [10] * 60, start=60)
    preview = agreed(make_rule(acme, duration_seconds=900))
    assert preview.incidents == [] and preview.summary == "This rule would have opened 0 incidents in the last day."


def test_a_long_breach_opens_one_incident_resolved_when_it_clears():
    acme = org()
    minutes(acme, [10] * 60 + [95] * 40 + [10] * 60, start=60)
    preview = agreed(make_rule(acme, duration_seconds=600))
    [incident] = preview.incidents
    # Breaching from the evaluation at minute 125 (its window holds minutes 120-124); fires 600 s on.
    assert (incident.group, incident.started_at, incident.resolved_at) == ({}, at(minutes=135), at(minutes=165))
    assert (incident.value, incident.peak) == (95, 95)
    assert preview.summary == "This rule would have opened 1 incident in the last day."


def flapping(organization, cycles=6):
    """Five minutes hot, five minutes cool, ``cycles`` times, between quiet hours."""
    minutes(organization, [10] * 60 + ([95] * 5 + [10] * 5) * cycles + [10] * 60, start=60)


def test_flapping_with_keep_firing_opens_one_incident_and_without_it_one_per_flap():
    acme = org()
    flapping(acme)
    kept = agreed(make_rule(acme, keep_firing_seconds=600))
    assert kept.incident_count == 1
    assert agreed(make_rule(acme)).incident_count == 6


def test_reopen_after_holds_back_the_incidents_of_a_flapping_group():
    acme = org()
    flapping(acme)
    assert agreed(make_rule(acme, reopen_after_seconds=1800)).incident_count == 2


@pytest.mark.parametrize(("no_data", "count"), [("alerting", 1), ("ok", 0), ("keep", 0)])
def test_no_data(no_data, count):
    acme = org()
    minutes(acme, [10] * 180)  # quiet data for three hours from the first evaluation, then nothing
    preview = agreed(make_rule(acme, no_data=no_data, duration_seconds=300))
    assert preview.incident_count == count
    if count:
        [incident] = preview.incidents
        # No data from the evaluation at minute 185 (the window after the last event); fires 300 s on.
        assert (incident.started_at, incident.resolved_at, incident.value) == (at(minutes=190), None, None)


def test_keep_leaves_a_firing_group_firing_when_its_data_stops():
    acme = org()
    minutes(acme, [95] * 30, start=60)
    [incident] = agreed(make_rule(acme, no_data="keep")).incidents
    assert incident.resolved_at is None


def test_groups_open_their_own_incidents_with_their_labels():
    acme = org()
    minutes(acme, [10] * 120, start=60, host="a")
    minutes(acme, [10] * 30 + [99] * 30 + [10] * 60, start=60, host="b")
    preview = agreed(make_rule(acme, group_by=["host"]))
    assert [incident.group for incident in preview.incidents] == [{"host": "b"}]
    assert preview.incidents[0].peak == 99
    assert (preview.group_count, preview.groups[0].group) == (2, {"host": "b"})  # groups with incidents first


def test_a_grouped_rule_with_no_data_at_all_alerts_as_a_whole():
    acme = org()
    minutes(acme, [10] * 30, start=60, host="a")
    preview = agreed(make_rule(acme, group_by=["host"], no_data="alerting"))
    assert {group_key(incident.group) for incident in preview.incidents} == {"{}"}


@pytest.mark.parametrize("fields", [
    {"aggregation": "p95"},
    {"aggregation": "max", "condition_operator": "gte", "threshold": 95},
    {"aggregation": "rate", "threshold": 0.5},
    {"aggregation": "count", "condition_operator": "lt", "threshold": 3},
    {"window_seconds": 600},  # not a time-series interval: the evaluator's query at each step
    {"window_seconds": 900, "condition_operator": "lt", "threshold": 20},
])
def test_the_preview_agrees_with_the_evaluator_whatever_the_aggregation_and_window(fields):
    acme = org()
    minutes(acme, [10, 20, 90, 99, 15] * 12 + [96] * 20 + [10] * 30, start=60)
    minutes(acme, [30, 40], start=200)  # a sparse stretch: counts below 3
    assert agreed(make_rule(acme, **fields)).incident_count >= 1


def test_a_group_without_its_tag_is_a_group_too():
    acme = org()
    minutes(acme, [99] * 20, start=60)  # no host tag: the group {"host": null}
    minutes(acme, [99] * 20, start=60, host="a")
    preview = agreed(make_rule(acme, group_by=["host"]))
    assert sorted(group_key(incident.group) for incident in preview.incidents) == [
        '{"host":"a"}', '{"host":null}']


def test_a_built_in_source_is_previewed_through_the_evaluators_query():
    acme = org()
    ingest_metric_items(acme, [
        MetricItem("skill.executions", 1.0, "counter", "", "", {"skill_id": "s", "success": str(i % 4 != 0).lower()},
                   at(30, minutes=60 + i)) for i in range(60)])
    preview = agreed(make_rule(acme, metric_name="skill.success_rate", condition_operator="lt", threshold=0.9,
                               tags={"skill_id": "s"}))
    assert preview.incident_count == 1


def test_each_point_is_the_value_the_evaluator_sees_at_that_moment():
    acme = org()
    minutes(acme, [10, 20, 90, 99, 15] * 24, start=60, host="a")
    minutes(acme, [50] * 50, start=100, host="b")
    rule = make_rule(acme, group_by=["host"], aggregation="p95")
    preview = preview_rule(rule, days=1, now=NOW)
    for charted in preview.groups:
        for point in charted.points:
            window = window_ending(point["time"], rule.window_seconds)
            found = {group_key(g.group): g.value_for(rule.aggregation, window) for g in Sources(point["time"]).fetch(
                rule.metric_name, org=rule_scope(rule.org), window=window, tags={}, group_by=["host"],
                with_percentiles=True)}
            expected = found.get(group_key(group_of(charted.group, ["host"])))
            assert point["value"] == (None if expected is None else pytest.approx(expected)), point


def test_nothing_is_written():
    acme = org()
    flapping(acme)
    saved = make_rule(acme, duration_seconds=300)
    evaluate(at(minutes=125), saved)  # a pending group to leave alone
    tables = (AlertRule, AlertRuleGroupState, AlertIncident, IncidentEvent)
    before = [model.objects.count() for model in tables]
    proposed = AlertRule(org=acme, name="proposal", metric_name="cpu.usage", condition_operator="gt", threshold=50)
    with CaptureQueriesContext(connection) as queries:
        preview = preview_rule(proposed, days=1, now=NOW, compare_to=saved)
    assert preview.incident_count == 6
    writes = [q["sql"] for q in queries if q["sql"].lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert [model.objects.count() for model in tables] == before
    assert proposed.pk is None


def test_compare_to_counts_the_saved_rules_incidents_and_says_so():
    acme = org()
    flapping(acme)
    saved = make_rule(acme)
    change = AlertRule(org=acme, metric_name="cpu.usage", condition_operator="gt", threshold=80,
                       keep_firing_seconds=600)
    preview = preview_rule(change, days=1, now=NOW, compare_to=saved)
    assert (preview.incident_count, preview.current_incident_count) == (1, 6)
    assert preview.summary == "This change would have opened 1 incident instead of 6 in the last day."
    same = preview_rule(saved, days=2, now=NOW, compare_to=saved)
    assert same.summary == "This change would have opened 6 incidents in the last 2 days, as many as the current rule."


@pytest.mark.parametrize("days", [0, 31, -1, True, 1.5, "7"])
def test_days_are_1_to_30(days):
    with pytest.raises(PreviewUnavailable) as raised:
        preview_rule(make_rule(org()), days=days, now=NOW)
    assert raised.value.field == "days"


@pytest.mark.parametrize(("window", "days", "step"), [
    (300, 1, 300), (300, 5, 300), (300, 7, 600), (300, 30, 1800), (60, 30, 1740), (86400, 30, 86400),
])
def test_the_step_is_the_window_or_a_multiple_keeping_to_1500_evaluations(window, days, step):
    assert evaluation_step(window, days) == step
    moments = evaluation_moments(window, days, NOW)
    assert len(moments) <= MAX_EVALUATIONS
    assert moments[-1] <= NOW and moments[0] >= NOW - timedelta(days=days)
    assert all(int(m.timestamp()) % window == 0 for m in moments)
    assert all(b - a == timedelta(seconds=step) for a, b in zip(moments, moments[1:], strict=False))


def test_a_30_day_preview_of_a_one_minute_rule_evaluates_every_minute_and_charts_1500_points():
    acme = org()
    minutes(acme, [95] * 40, start=60)
    minutes(acme, [95] * 3, start=600)  # shorter than a 29-minute step: every window sees it
    rule = make_rule(acme, window_seconds=60)
    preview = preview_rule(rule, days=30, now=NOW)
    assert (preview.step_seconds, preview.evaluations) == (60, 43_201)  # both ends of the 30 days
    assert preview.incident_count == 2
    [group] = preview.groups
    assert len(group.points) == 1490 <= MAX_CHART_POINTS  # 29 evaluations a point
    assert sum(point["value"] == 95 for point in group.points) >= 2  # both breaches still on the chart


def test_chart_points_keep_the_most_breaching_value_of_each_stretch():
    moments = [NOW - timedelta(minutes=n) for n in reversed(range(3000))]
    values = {moment: 10.0 for moment in moments} | {moments[7]: 99.0, moments[8]: None, moments[2001]: 1.0}
    high = chart_points(moments, values, "gt")
    low = chart_points(moments, values, "lt")
    assert len(high) == len(low) == 1500
    assert high[3] == {"time": moments[7], "value": 99.0}  # moments 6 and 7 share a point, timed at the last
    assert low[1000] == {"time": moments[2001], "value": 1.0} and high[1000]["value"] == 10.0
    assert chart_points(moments[:2], {}, "gt") == [{"time": moments[0], "value": None},
                                                  {"time": moments[1], "value": None}]


def test_a_window_longer_than_the_period_is_evaluated_once():
    acme = org()
    minutes(acme, [95] * 10, start=60)
    preview = preview_rule(make_rule(acme, window_seconds=7 * 86400), days=1, now=NOW)
    assert preview.evaluations == 1


def test_service_health_cannot_be_previewed():
    rule = AlertRule(metric_name="service.health", condition_operator="lt", threshold=0.5)
    with pytest.raises(PreviewUnavailable) as raised:
        preview_rule(rule, now=NOW)
    assert raised.value.field == "metric_name"
    with pytest.raises(PreviewUnavailable) as raised:
        preview_rule(make_rule(org()), now=NOW, compare_to=rule)
    assert raised.value.field == "compare_to"


def test_a_platform_rule_reads_every_org():
    minutes(org("acme"), [95] * 20, start=60)
    minutes(org("globex"), [95] * 20, start=600)
    assert agreed(make_rule(None)).incident_count == 2
    assert preview_rule(make_rule(org("acme"), name="own"), days=1, now=NOW).incident_count == 1
