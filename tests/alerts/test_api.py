"""alerts/rules and alerts/incidents (API.md, Alerts), spoken as the personas."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule
from alerts.services.evaluation import evaluate_rules
from tests.alerts.factories import make_rule, record

pytestmark = pytest.mark.django_db

# The seed's "Create Alert Rule" curl example, body as written.
SEED_BODY = {
    "name": "high_error_rate",
    "metric_name": "api.error_rate",
    "condition_operator": "gt",
    "threshold": 5.0,
    "severity": "critical",
    "description": "Alert when error rate exceeds 5%",
    "duration_seconds": 300,
}


def firing_incident(org, name="cpu high", **fields) -> AlertIncident:
    """A rule of ``org`` and its open incident, made by the evaluator at the real now."""
    now = timezone.now()
    rule = make_rule(org, name=name, **fields)
    record(org, rule.metric_name, 99, now - timedelta(seconds=10), host="web-1")
    evaluate_rules(now, rules=AlertRule.objects.filter(pk=rule.pk))
    return AlertIncident.objects.get(rule=rule)


# --- Rules ----------------------------------------------------------------------------------


def test_the_seed_curl_example_creates_a_rule_with_the_documented_defaults(personas):
    response = personas.member.post("alerts/rules", SEED_BODY)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert isinstance(body["id"], int)
    assert {key: body[key] for key in SEED_BODY} == SEED_BODY
    assert (body["aggregation"], body["window_seconds"], body["tags"], body["group_by"], body["keep_firing_seconds"],
            body["reopen_after_seconds"], body["no_data"], body["labels"], body["enabled"], body["org"], body["state"],
            body["trigger_count"]) == ("avg", 300, {}, [], 0, 0, "ok", {}, True, "acme", "inactive", 0)
    rule = AlertRule.objects.get(pk=body["id"])
    assert rule.org == personas.org and rule.duration_seconds == 300


def test_defaults_of_severity_description_and_duration(personas):
    body = personas.member.post("alerts/rules", {"name": "r", "metric_name": "m", "condition_operator": "lt",
                                                 "threshold": 1}).json()
    assert (body["severity"], body["description"], body["duration_seconds"]) == ("warning", "", 0)


def test_a_trailing_slash_answers_too(personas):
    assert personas.member.post("alerts/rules/", SEED_BODY).status_code == 201
    assert personas.member.get("alerts/rules/").status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"condition_operator": "ne"}, "condition_operator"),
    ({"condition_operator": None}, "condition_operator"),
    ({"threshold": "inf"}, "threshold"),
    ({"threshold": "high"}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"window_seconds": 10}, "window_seconds"),
    ({"window_seconds": 10 ** 9}, "window_seconds"),
    ({"aggregation": "median"}, "aggregation"),
    ({"severity": "fatal"}, "severity"),
    ({"no_data": "maybe"}, "no_data"),
    ({"duration_seconds": -1}, "duration_seconds"),
    ({"keep_firing_seconds": "soon"}, "keep_firing_seconds"),
    ({"reopen_after_seconds": -1}, "reopen_after_seconds"),
    ({"reopen_after_seconds": 10 ** 9}, "reopen_after_seconds"),
    ({"tags": ["host"]}, "tags"),
    ({"tags": {"host": 5}}, "tags"),
    ({"group_by": "host"}, "group_by"),
    ({"group_by": ["a", "a"]}, "group_by"),
    ({"group_by": ["a", "b", "c", "d", "e", "f"]}, "group_by"),
    ({"labels": {"team": ["ops"]}}, "labels"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"metric_name": ""}, "metric_name"),
    ({"metric_name": "x" * 201}, "metric_name"),
    ({"metric_name": "skill.success_rate", "tags": {"host": "a"}}, "tags"),
    ({"metric_name": "service.health", "group_by": ["host"]}, "group_by"),
    ({"metric_name": "skill.health_score"}, "tags"),
    ({"org_id": "globex"}, "org_id"),
])
def test_bad_rules_get_400_naming_the_field(personas, change, field):
    body = {**SEED_BODY, **change}
    response = personas.member.post("alerts/rules", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not AlertRule.objects.filter(org=personas.org).exists()


@pytest.mark.parametrize("number", ["1e999", "NaN", "-Infinity"])
def test_a_threshold_that_is_not_finite_in_the_json_text_is_a_400(personas, number):
    text = '{"name": "r", "metric_name": "m", "condition_operator": "gt", "threshold": ' + number + "}"
    response = personas.member.client.post("/api/v1/analytics/alerts/rules", text, content_type="application/json")
    assert response.status_code == 400
    assert not AlertRule.objects.filter(org=personas.org).exists()


def test_required_fields(personas):
    response = personas.member.post("alerts/rules", {})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "metric_name", "condition_operator", "threshold"}


def test_a_non_object_body_is_a_400_not_a_500(personas):
    assert personas.member.post("alerts/rules", [1, 2]).status_code == 400
    assert personas.member.post("alerts/rules", "text").status_code == 400


def test_a_duplicate_name_in_the_org_is_a_409(personas):
    assert personas.member.post("alerts/rules", SEED_BODY).status_code == 201
    response = personas.member.post("alerts/rules", {**SEED_BODY, "threshold": 9.0})
    assert response.status_code == 409, response.content
    assert response.json() == {"detail": "This org already has a rule with this name."}
    assert AlertRule.objects.get(org=personas.org, name=SEED_BODY["name"]).threshold == 5.0  # nothing changed
    assert personas.outsider.post("alerts/rules", SEED_BODY).status_code == 201  # another org's name space


def test_bad_input_with_a_duplicate_name_is_a_400_naming_the_bad_field(personas):
    personas.member.post("alerts/rules", SEED_BODY)
    response = personas.member.post("alerts/rules", {**SEED_BODY, "threshold": "high"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"threshold"}


def test_renaming_a_rule_to_a_taken_name_is_a_409(personas):
    taken = make_rule(personas.org, name="taken")
    other = make_rule(personas.org, name="other")
    response = personas.member.patch(f"alerts/rules/{other.pk}", {"name": "taken"})
    assert response.status_code == 409 and "already has a rule" in response.json()["detail"]
    other.refresh_from_db()
    assert other.name == "other" and AlertRule.objects.filter(name="taken").get() == taken
    assert personas.member.patch(f"alerts/rules/{other.pk}", {"name": "other"}).status_code == 200  # its own name


def test_a_rule_on_a_metric_never_recorded_is_created_with_a_warning(personas):
    response = personas.member.post("alerts/rules", SEED_BODY)
    assert response.status_code == 201
    assert response.json()["warnings"] == [
        "no samples of metric 'api.error_rate' have been recorded yet; with no_data: ok this rule cannot fire"]
    assert AlertRule.objects.filter(org=personas.org, name=SEED_BODY["name"]).exists()


def test_the_warning_names_the_tags_and_the_no_data_policy(personas):
    record(personas.org, "api.error_rate", 1.0, timezone.now(), host="web-1")
    body = {**SEED_BODY, "tags": {"host": "web-2"}, "no_data": "alerting"}
    assert personas.member.post("alerts/rules", body).json()["warnings"] == [
        "no samples of metric 'api.error_rate' with tags host=web-2 have been recorded yet; "
        "with no_data: alerting this rule fires until samples arrive"]


def test_a_rule_on_a_recorded_metric_or_a_built_in_source_has_no_warning(personas):
    record(personas.org, "api.error_rate", 1.0, timezone.now(), host="web-1")
    assert personas.member.post("alerts/rules", SEED_BODY).json()["warnings"] == []
    with_tag = {**SEED_BODY, "name": "tagged", "tags": {"host": "web-1"}}
    assert personas.member.post("alerts/rules", with_tag).json()["warnings"] == []
    built_in = {**SEED_BODY, "name": "skill", "metric_name": "skill.success_rate", "condition_operator": "lt",
                "threshold": 0.9}
    assert personas.member.post("alerts/rules", built_in).json()["warnings"] == []


def test_another_orgs_samples_do_not_count_for_an_org_rule(personas):
    record(personas.other_org, "api.error_rate", 1.0, timezone.now())
    assert personas.member.post("alerts/rules", SEED_BODY).json()["warnings"] != []


def test_a_change_answers_the_warnings_of_the_changed_rule(personas):
    record(personas.org, "api.error_rate", 1.0, timezone.now())
    rule_id = personas.member.post("alerts/rules", SEED_BODY).json()["id"]
    changed = personas.member.patch(f"alerts/rules/{rule_id}", {"metric_name": "api.eror_rate"}).json()
    assert changed["metric_name"] == "api.eror_rate"
    assert changed["warnings"] == [
        "no samples of metric 'api.eror_rate' have been recorded yet; with no_data: ok this rule cannot fire"]
    assert "warnings" not in personas.member.get(f"alerts/rules/{rule_id}").json()  # only the write answers it


def test_org_id_in_the_body_must_be_the_tokens_org(personas):
    assert personas.member.post("alerts/rules", {**SEED_BODY, "org_id": "acme"}).status_code == 201


def test_a_read_only_token_cannot_write(personas):
    assert personas.reader.post("alerts/rules", SEED_BODY).status_code == 403
    assert personas.reader.get("alerts/rules").status_code == 200
    assert personas.anonymous.get("alerts/rules").status_code == 401


def test_rules_are_scoped_to_the_org_and_platform_rules_to_staff(personas):
    own = make_rule(personas.org, name="own")
    theirs = make_rule(personas.other_org, name="theirs")
    names = [r["name"] for r in personas.member.get("alerts/rules").json()["results"]]
    assert names == ["own"]
    assert personas.member.get(f"alerts/rules/{theirs.pk}").status_code == 404
    assert personas.member.patch(f"alerts/rules/{theirs.pk}", {"threshold": 1}).status_code == 404
    assert personas.member.delete(f"alerts/rules/{theirs.pk}").status_code == 404
    default = AlertRule.objects.get(name="service unhealthy")
    assert personas.member.get(f"alerts/rules/{default.pk}").status_code == 404
    staff_names = {r["name"] for r in personas.staff.get("alerts/rules").json()["results"]}
    assert staff_names == {"own", "theirs", "service unhealthy"}
    assert personas.staff.get(f"alerts/rules/{default.pk}").json()["org"] is None
    assert personas.member.get(f"alerts/rules/{own.pk}").json()["name"] == "own"


def test_staff_create_a_rule_for_the_org_they_name(personas):
    assert personas.staff.post("alerts/rules", SEED_BODY).status_code == 400
    response = personas.staff.post("alerts/rules?org=globex", SEED_BODY)
    assert response.status_code == 201 and response.json()["org"] == "globex"


def test_patch_and_delete(personas):
    rule_id = personas.member.post("alerts/rules", SEED_BODY).json()["id"]
    response = personas.member.patch(f"alerts/rules/{rule_id}", {"threshold": 7.5, "enabled": False})
    assert response.status_code == 200
    assert (response.json()["threshold"], response.json()["enabled"]) == (7.5, False)
    assert personas.member.patch(f"alerts/rules/{rule_id}", {"threshold": "nan"}).status_code == 400
    assert personas.member.patch(f"alerts/rules/{rule_id}", {"window_seconds": 0}).status_code == 400
    assert AlertRule.objects.get(pk=rule_id).threshold == 7.5
    assert personas.member.client.put(f"/api/v1/analytics/alerts/rules/{rule_id}", SEED_BODY,
                                      format="json").status_code == 405
    assert personas.member.delete(f"alerts/rules/{rule_id}").status_code == 204
    assert personas.member.get(f"alerts/rules/{rule_id}").status_code == 404


def test_deleting_a_rule_resolves_and_keeps_its_incidents(personas):
    incident = firing_incident(personas.org)
    assert personas.member.delete(f"alerts/rules/{incident.rule_id}").status_code == 204
    body = personas.member.get(f"alerts/incidents/{incident.pk}").json()
    assert (body["status"], body["rule_id"], body["rule_name"]) == ("resolved", None, "cpu high")
    assert body["timeline"][-1]["note"] == "rule deleted"


def test_a_rule_shows_its_state(personas):
    incident = firing_incident(personas.org)
    body = personas.member.get(f"alerts/rules/{incident.rule_id}").json()
    assert (body["state"], body["trigger_count"]) == ("firing", 1)
    assert body["last_triggered_at"].endswith("Z")


# --- Incidents -------------------------------------------------------------------------------


def test_the_incident_list_shows_unresolved_incidents_by_default_with_the_documented_fields(personas):
    open_one = firing_incident(personas.org, name="a", severity="warning")
    critical = firing_incident(personas.org, name="b", severity="critical")
    done = firing_incident(personas.org, name="c")
    personas.member.post(f"alerts/incidents/{done.pk}/resolve", {"note": "fixed"})
    body = personas.member.get("alerts/incidents").json()
    assert body["count"] == 2
    assert [i["id"] for i in body["results"]] == [critical.pk, open_one.pk]  # most severe first
    first = body["results"][0]
    assert {"id", "rule_id", "rule_name", "group", "status", "severity", "value", "threshold", "triggered_at",
            "acknowledged_at", "resolved_at", "silenced_until", "notes"} <= set(first)
    assert (first["rule_name"], first["status"], first["severity"], first["value"], first["threshold"]) == (
        "b", "open", "critical", 99.0, 80.0)
    assert first["triggered_at"].endswith("Z")


def test_incident_filters(personas):
    a = firing_incident(personas.org, name="a", severity="warning")
    b = firing_incident(personas.org, name="b", severity="critical")
    personas.member.post(f"alerts/incidents/{a.pk}/resolve")

    def ids(params):
        response = personas.member.get("alerts/incidents", params)
        assert response.status_code == 200, response.content
        return [i["id"] for i in response.json()["results"]]

    assert ids({"status": "resolved"}) == [a.pk]
    assert ids({"status": ["resolved", "open"]}) == [b.pk, a.pk]
    assert ids({"severity": "critical"}) == [b.pk]
    assert ids({"severity": "warning"}) == []  # resolved, and unresolved is the default
    assert ids({"rule": a.rule_id, "status": "resolved"}) == [a.pk]
    assert personas.member.get("alerts/incidents", {"status": "closed"}).status_code == 400
    assert "severity" in personas.member.get("alerts/incidents", {"severity": "x"}).json()["errors"]
    assert personas.member.get("alerts/incidents", {"rule": "abc"}).status_code == 400


def test_incidents_are_scoped_to_the_org(personas):
    theirs = firing_incident(personas.other_org)
    assert personas.member.get("alerts/incidents").json()["count"] == 0
    assert personas.member.get(f"alerts/incidents/{theirs.pk}").status_code == 404
    for action in ("acknowledge", "resolve"):
        assert personas.member.post(f"alerts/incidents/{theirs.pk}/{action}").status_code == 404
    assert personas.staff.get("alerts/incidents").json()["count"] == 1
    assert personas.reader.post(f"alerts/incidents/{theirs.pk}/acknowledge").status_code == 403


def test_acknowledge_silence_and_resolve_through_the_api_each_on_the_timeline(personas):
    incident = firing_incident(personas.org)
    url = f"alerts/incidents/{incident.pk}"

    response = personas.member.post(f"{url}/acknowledge", {"note": "on it"})
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged" and response.json()["acknowledged_at"].endswith("Z")
    assert personas.member.post(f"{url}/acknowledge").status_code == 409  # repeating the current status

    until = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    response = personas.member.post(f"{url}/silence", {"until": until.isoformat(), "note": "deploying"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["silenced_until"]) == (
        "silenced", until.isoformat().replace("+00:00", ".000000Z"))
    assert personas.member.post(f"{url}/silence", {"until": until.isoformat()}).status_code == 409

    response = personas.member.post(f"{url}/resolve", {"note": "rolled back"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["silenced_until"]) == ("resolved", None)
    assert body["resolved_at"].endswith("Z")
    assert "rolled back" in body["notes"] and "on it" in body["notes"]
    for action, data in (("acknowledge", {}), ("resolve", {}), ("silence", {"until": until.isoformat()})):
        response = personas.member.post(f"{url}/{action}", data)
        assert response.status_code == 409, action
        assert "resolved" in response.json()["detail"]

    timeline = personas.member.get(url).json()["timeline"]
    assert [(e["kind"], e["from_status"], e["to_status"]) for e in timeline] == [
        ("firing", "inactive", "firing"), ("acknowledged", "open", "acknowledged"),
        ("silenced", "acknowledged", "silenced"), ("resolved", "silenced", "resolved")]
    assert timeline[1]["actor"].startswith("token member (twa_")
    assert timeline[2]["note"].endswith(": deploying")
    assert timeline[3]["note"] == "rolled back"
    assert all(e["at"].endswith("Z") for e in timeline)


def test_silenced_incidents_can_be_acknowledged_and_open_ones_silenced(personas):
    incident = firing_incident(personas.org)
    until = (timezone.now() + timedelta(minutes=30)).isoformat()
    assert personas.member.post(f"alerts/incidents/{incident.pk}/silence", {"until": until}).status_code == 200
    response = personas.member.post(f"alerts/incidents/{incident.pk}/acknowledge")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["silenced_until"]) == ("acknowledged", None)
    assert incident.silences.get().ended_at is not None


@pytest.mark.parametrize(("body", "field"), [
    ({}, "until"),
    ({"until": "tomorrow"}, "until"),
    ({"until": "2001-01-01T00:00:00Z"}, "until"),
    ({"until": "2999-01-01T00:00:00Z", "note": ["x"]}, "note"),
])
def test_bad_silences_get_400(personas, body, field):
    incident = firing_incident(personas.org)
    response = personas.member.post(f"alerts/incidents/{incident.pk}/silence", body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    incident.refresh_from_db()
    assert incident.status == "open"


def test_a_naive_until_is_utc(personas):
    incident = firing_incident(personas.org)
    until = (timezone.now() + timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    body = personas.member.post(f"alerts/incidents/{incident.pk}/silence", {"until": until.isoformat()}).json()
    assert body["silenced_until"] == until.isoformat() + ".000000Z"


def test_unknown_incident_is_404(personas):
    assert personas.member.post("alerts/incidents/999999/acknowledge").status_code == 404
    assert personas.member.get("alerts/incidents/999999").status_code == 404


def test_staff_act_on_platform_incidents_under_their_name(personas):
    incident = firing_incident(None, name="platform rule")
    assert personas.member.post(f"alerts/incidents/{incident.pk}/acknowledge").status_code == 404
    response = personas.staff.post(f"alerts/incidents/{incident.pk}/acknowledge", {"note": "mine"})
    assert response.status_code == 200
    assert AlertIncident.objects.get(pk=incident.pk).acknowledged_by == "ops"
