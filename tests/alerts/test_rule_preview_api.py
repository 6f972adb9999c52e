"""POST alerts/rules/preview and GET alerts/rules/{id}/preview (docs/alerting.md, Preview), spoken as the personas."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule, AlertRuleGroupState, IncidentEvent
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from tests.alerts.factories import make_rule
from tests.alerts.test_api_schema import conforms, operation, schema  # noqa: F401  (schema: a fixture)

pytestmark = pytest.mark.django_db

PROPOSAL = {"name": "cpu high", "metric_name": "cpu.usage", "condition_operator": "gt", "threshold": 80.0}


def hot_hour(organization, **tags):
    """The last three hours, one event a minute: hot (95) from 90 to 60 minutes ago, else 10."""
    now = timezone.now()
    ingest_metric_items(organization, [
        MetricItem("cpu.usage", 95.0 if 60 <= age < 90 else 10.0, "gauge", "", "", tags, now - timedelta(minutes=age))
        for age in range(180)])


def written():
    return [model.objects.count() for model in (AlertRule, AlertRuleGroupState, AlertIncident, IncidentEvent)]


def test_a_proposed_rule_is_previewed_with_its_points_threshold_and_incidents(personas, schema):  # noqa: F811
    hot_hour(personas.org)
    before = written()
    response = personas.member.post("alerts/rules/preview", {**PROPOSAL, "days": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert conforms(schema, "RulePreview", body), body
    assert (body["metric_name"], body["aggregation"], body["operator"], body["threshold"]) == (
        "cpu.usage", "avg", "gt", 80)
    assert (body["step_seconds"], body["source"], body["current_incident_count"]) == (300, "raw", None)
    [group] = body["groups"]
    assert group["group"] == {} and len(group["points"]) == body["evaluations"] in (288, 289)
    assert group["points"][-1]["time"].endswith("Z")
    assert max(point["value"] or 0 for point in group["points"]) == 95
    [incident] = body["incidents"]
    assert (incident["group"], incident["value"], incident["peak"], body["incident_count"]) == ({}, 95, 95, 1)
    started, resolved = (datetime.fromisoformat(incident[key]) for key in ("started_at", "resolved_at"))
    assert timedelta(minutes=25) <= resolved - started <= timedelta(minutes=35)
    assert body["summary"] == "This rule would have opened 1 incident in the last day."
    assert written() == before  # nothing stored, the proposal included


def test_the_defaults_are_the_rule_creations_and_a_7_day_period(personas):
    body = personas.member.post("alerts/rules/preview", {"metric_name": "m", "condition_operator": "lt",
                                                         "threshold": 1}).json()
    start, end = (datetime.fromisoformat(body[key]) for key in ("start", "end"))
    assert (end - start, body["aggregation"], body["step_seconds"]) == (timedelta(days=7), "avg", 300)


def test_compare_to_the_saved_rule_says_what_the_change_would_do(personas):
    hot_hour(personas.org)
    saved = make_rule(personas.org, name="cpu high", threshold=50)
    body = personas.member.post("alerts/rules/preview", {**PROPOSAL, "threshold": 99, "days": 1,
                                                         "compare_to": saved.pk}).json()
    assert (body["incident_count"], body["current_incident_count"]) == (0, 1)
    assert body["summary"] == "This change would have opened 0 incidents instead of 1 in the last day."


def test_a_saved_rule_is_previewed(personas, schema):  # noqa: F811
    hot_hour(personas.org, host="web-1")
    rule = make_rule(personas.org, group_by=["host"], duration_seconds=600)
    response = personas.member.get(f"alerts/rules/{rule.pk}/preview", {"days": 2})
    assert response.status_code == 200, response.content
    body = response.json()
    assert conforms(schema, "RulePreview", body)
    assert [incident["group"] for incident in body["incidents"]] == [{"host": "web-1"}]
    assert personas.member.get(f"alerts/rules/{rule.pk}/preview/").status_code == 200  # default days, slash
    assert personas.member.post("alerts/rules/preview/", PROPOSAL).status_code == 200


def test_read_only_tokens_may_preview_and_anonymous_callers_may_not(personas):
    rule = make_rule(personas.org)
    assert personas.reader.post("alerts/rules/preview", PROPOSAL).status_code == 200
    assert personas.reader.get(f"alerts/rules/{rule.pk}/preview").status_code == 200
    assert personas.anonymous.post("alerts/rules/preview", PROPOSAL).status_code == 401
    assert personas.anonymous.get(f"alerts/rules/{rule.pk}/preview").status_code == 401


def test_another_orgs_rule_is_404_in_the_path_and_400_as_compare_to(personas):
    theirs = make_rule(personas.other_org)
    platform = AlertRule.objects.get(name="service unhealthy")
    assert personas.member.get(f"alerts/rules/{theirs.pk}/preview").status_code == 404
    assert personas.member.get(f"alerts/rules/{platform.pk}/preview").status_code == 404
    assert personas.member.get(f"alerts/rules/{2 ** 64}/preview").status_code == 404
    response = personas.member.post("alerts/rules/preview", {**PROPOSAL, "compare_to": theirs.pk})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"compare_to"}


def test_a_proposal_reads_only_its_orgs_data(personas):
    hot_hour(personas.other_org)
    assert personas.member.post("alerts/rules/preview", {**PROPOSAL, "days": 1}).json()["incident_count"] == 0
    assert personas.outsider.post("alerts/rules/preview", {**PROPOSAL, "days": 1}).json()["incident_count"] == 1


def test_staff_preview_for_an_org_or_as_a_platform_rule(personas):
    hot_hour(personas.org)
    hot_hour(personas.other_org)
    count = "incident_count"
    assert personas.staff.post("alerts/rules/preview?org=acme", {**PROPOSAL, "days": 1}).json()[count] == 1
    assert personas.staff.post("alerts/rules/preview", {**PROPOSAL, "days": 1}).json()[count] == 1  # one group: {}
    theirs = make_rule(personas.other_org)
    assert personas.staff.get(f"alerts/rules/{theirs.pk}/preview", {"days": 1}).json()[count] == 1
    response = personas.staff.post("alerts/rules/preview", {**PROPOSAL, "org_id": "acme"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"org_id"}


@pytest.mark.parametrize(("change", "field"), [
    ({"days": 0}, "days"),
    ({"days": 31}, "days"),
    ({"days": "7"}, "days"),
    ({"days": 1.5}, "days"),
    ({"condition_operator": "ne"}, "condition_operator"),
    ({"threshold": "high"}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"window_seconds": 10}, "window_seconds"),
    ({"aggregation": "median"}, "aggregation"),
    ({"duration_seconds": -1}, "duration_seconds"),
    ({"keep_firing_seconds": "soon"}, "keep_firing_seconds"),
    ({"no_data": "maybe"}, "no_data"),
    ({"severity": "fatal"}, "severity"),
    ({"tags": ["host"]}, "tags"),
    ({"group_by": "host"}, "group_by"),
    ({"group_by": ["a", "a"]}, "group_by"),
    ({"name": " padded"}, "name"),
    ({"metric_name": ""}, "metric_name"),
    ({"metric_name": "skill.success_rate", "tags": {"host": "a"}}, "tags"),
    ({"metric_name": "skill.health_score"}, "tags"),
    ({"metric_name": "service.health"}, "metric_name"),
    ({"compare_to": 0}, "compare_to"),
    ({"compare_to": 10 ** 9}, "compare_to"),
    ({"org_id": "globex"}, "org_id"),
    ({"enabled": "yes"}, "enabled"),
])
def test_bad_input_is_a_400_naming_the_field(personas, change, field):
    response = personas.member.post("alerts/rules/preview", {**PROPOSAL, **change})
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {field}


def test_required_fields_and_bodies_that_are_no_object(personas):
    response = personas.member.post("alerts/rules/preview", {})
    assert set(response.json()["errors"]) == {"metric_name", "condition_operator", "threshold"}
    assert personas.member.post("alerts/rules/preview", [1, 2]).status_code == 400
    assert personas.member.client.post("/api/v1/analytics/alerts/rules/preview", "x",
                                       content_type="text/plain").status_code == 415


@pytest.mark.parametrize("days", ["0", "31", "seven", "1.5", ""])
def test_bad_days_of_a_saved_rule_are_a_400_naming_days(personas, days):
    rule = make_rule(personas.org)
    response = personas.member.get(f"alerts/rules/{rule.pk}/preview", {"days": days})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"days"}


def test_a_saved_service_health_rule_is_a_400_naming_metric_name(personas):
    rule = make_rule(personas.org, metric_name="service.health", condition_operator="lt", threshold=0.5)
    response = personas.member.get(f"alerts/rules/{rule.pk}/preview")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"metric_name"}


def test_the_operations_document_their_errors(schema):  # noqa: F811
    assert {"200", "400", "401", "403", "413", "415"} <= set(operation(schema, "rules/preview", "post")["responses"])
    assert {"200", "400", "401", "403", "404"} <= set(operation(schema, "rules/{id}/preview", "get")["responses"])
