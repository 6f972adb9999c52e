"""The alerts schema says what the alerts API does: what one accepts the other accepts, and responses match it."""

import json
import re
from datetime import datetime, timedelta

import jsonschema
import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from alerts.models import MAX_GROUP_BY, MAX_LABELS, MAX_TAGS, TAG_KEY_MAX, TAG_VALUE_MAX, AlertRule
from tests.alerts.test_api import SEED_BODY, firing_incident

pytestmark = pytest.mark.django_db
ALERTS = "/api/v1/analytics/alerts"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def _pattern(validator, pattern, instance, schema):
    """JSON Schema's (ECMA's) ``$`` is the end of the string; Python's also matches before a final newline."""
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(instance) -> bool:
    return not isinstance(instance, str) or bool(datetime.fromisoformat(instance))


def conforms(schema, component: str, instance) -> bool:
    document = {"$ref": f"#/components/schemas/{component}", "components": schema["components"]}
    return EcmaValidator(document, format_checker=FORMATS).is_valid(instance)


def operation(schema, path: str, method: str) -> dict:
    return schema["paths"][f"{ALERTS}/{path}"][method]


# (change to the seed's body, accepted?) — the schema and the API must say the same.
RULE_BODIES = [
    ({}, True),
    ({"name": " padded"}, False),
    ({"name": "trailing newline\n"}, False),
    ({"name": "nul\x00"}, False),
    ({"name": "   "}, False),
    ({"name": 5}, False),
    ({"name": "x" * 201}, False),
    ({"name": "émoji 🚨 ok"}, True),
    ({"metric_name": "no\u00a0break space"}, True),  # what the metric ingest accepts, a rule watches
    ({"metric_name": "tab\there"}, False),
    ({"description": ""}, True),
    ({"description": "two\nlines"}, True),
    ({"description": "nul\x00"}, False),
    ({"description": " kept as sent "}, True),
    ({"threshold": "5"}, False),
    ({"threshold": True}, False),
    ({"threshold": 1e308}, True),
    ({"threshold": 7}, True),
    ({"window_seconds": "300"}, False),
    ({"window_seconds": 300.0}, True),
    ({"window_seconds": 300.5}, False),
    ({"window_seconds": 59}, False),
    ({"duration_seconds": 10 ** 30}, False),
    ({"enabled": "true"}, False),
    ({"enabled": 1}, False),
    ({"severity": 1}, False),
    ({"severity": "error"}, True),
    ({"no_data": "keep"}, True),
    ({"aggregation": "p99"}, True),
    ({"tags": {f"k{i}": "v" for i in range(MAX_TAGS)}}, True),
    ({"tags": {f"k{i}": "v" for i in range(MAX_TAGS + 1)}}, False),
    ({"tags": {"": "v"}}, False),
    ({"tags": {"k" * TAG_KEY_MAX: "v" * TAG_VALUE_MAX}}, True),
    ({"tags": {"k" * (TAG_KEY_MAX + 1): "v"}}, False),
    ({"tags": {"k": "v" * (TAG_VALUE_MAX + 1)}}, False),
    ({"tags": {"k": "\x01"}}, False),
    ({"tags": {"k": 1}}, False),
    ({"tags": {"k": None}}, False),
    ({"tags": None}, False),
    ({"labels": {f"k{i}": "v" for i in range(MAX_LABELS + 1)}}, False),
    ({"labels": {"team": "ops"}}, True),
    ({"group_by": [f"k{i}" for i in range(MAX_GROUP_BY)]}, True),
    ({"group_by": [f"k{i}" for i in range(MAX_GROUP_BY + 1)]}, False),
    ({"group_by": ["a", "a"]}, False),
    ({"group_by": [""]}, False),
    ({"group_by": ["new\nline"]}, False),
    ({"group_by": "host"}, False),
    ({"metric_name": "skill.success_rate", "tags": {"skill_id": "a"}}, True),
    ({"metric_name": "skill.success_rate", "tags": {"host": "a"}}, False),
    ({"metric_name": "skill.p95_latency_ms", "group_by": ["skill_id", "host"]}, False),
    ({"metric_name": "skill.health_score"}, False),
    ({"metric_name": "skill.health_score", "group_by": ["skill_id"]}, True),
    ({"metric_name": "skill.health_score", "tags": {"skill_id": "a"}}, True),
    ({"metric_name": "service.health", "group_by": ["service"]}, True),
    ({"metric_name": "service.health", "tags": {"host": "a"}}, False),
]


@pytest.mark.parametrize(("change", "accepted"), RULE_BODIES)
def test_the_rule_schema_and_the_api_agree(personas, schema, change, accepted):
    body = {**SEED_BODY, **change}
    assert conforms(schema, "AlertRuleRequest", body) == accepted
    response = personas.member.post("alerts/rules", body)
    assert response.status_code == (201 if accepted else 400), response.content
    if accepted:
        assert conforms(schema, "AlertRule", response.json()), response.json()
    else:
        assert response.json()["errors"]


@pytest.mark.parametrize(("change", "accepted"), [
    ({}, True),
    ({"threshold": 1.5}, True),
    ({"enabled": False, "severity": "info"}, True),
    ({"window_seconds": 0}, False),
    ({"threshold": "nan"}, False),
    ({"name": ""}, False),
    ({"metric_name": "skill.success_rate", "tags": {"host": "a"}}, False),
])
def test_the_patch_schema_and_the_api_agree(personas, schema, change, accepted):
    rule_id = personas.member.post("alerts/rules", SEED_BODY).json()["id"]
    assert conforms(schema, "PatchedAlertRuleRequest", change) == accepted
    response = personas.member.patch(f"alerts/rules/{rule_id}", change)
    assert response.status_code == (200 if accepted else 400), response.content
    if accepted:
        assert conforms(schema, "AlertRule", response.json())


def test_patch_documents_no_required_fields_and_no_defaults(schema):
    patched = schema["components"]["schemas"]["PatchedAlertRuleRequest"]
    assert "required" not in patched
    assert not [name for name, prop in patched["properties"].items() if "default" in prop]
    created = schema["components"]["schemas"]["AlertRuleRequest"]
    assert set(created["required"]) == {"name", "metric_name", "condition_operator", "threshold"}


def test_a_silence_body_agrees_with_the_schema(personas, schema):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    for body, accepted in [({"until": 5}, False), ({"until": "soon"}, False), ({"until": future, "note": "\x00"},
                                                                                 False),
                           ({"until": future, "note": 5}, False), ({"note": "x"}, False)]:
        assert conforms(schema, "IncidentSilenceRequest", body) == accepted, body
        incident = firing_incident(personas.org, name=f"rule {len(body)} {body!r}")
        response = personas.member.post(f"alerts/incidents/{incident.pk}/silence", body)
        assert response.status_code == 400, (body, response.content)
    assert "future" in schema["components"]["schemas"]["IncidentSilenceRequest"]["properties"]["until"]["description"]


def test_incident_responses_match_their_schema(personas, schema):
    incident = firing_incident(personas.org)
    listed = personas.member.get("alerts/incidents").json()
    assert conforms(schema, "PaginatedIncidentList", listed), listed
    acknowledged = personas.member.post(f"alerts/incidents/{incident.pk}/acknowledge", {"note": "on it"}).json()
    assert conforms(schema, "Incident", acknowledged), acknowledged
    detail = personas.member.get(f"alerts/incidents/{incident.pk}").json()
    assert conforms(schema, "IncidentDetail", detail), detail
    rule = personas.member.get(f"alerts/rules/{incident.rule_id}").json()
    assert conforms(schema, "AlertRule", rule), rule
    personas.member.delete(f"alerts/rules/{incident.rule_id}")
    orphan = personas.member.get(f"alerts/incidents/{incident.pk}").json()
    assert orphan["rule_id"] is None and conforms(schema, "IncidentDetail", orphan)


def test_incident_filters_are_documented_with_their_enums_and_checked(personas, schema):
    parameters = {p["name"]: p["schema"] for p in operation(schema, "incidents", "get")["parameters"]}
    assert parameters["status"]["items"]["enum"] == ["open", "acknowledged", "silenced", "resolved"]
    assert parameters["severity"]["items"]["enum"] == ["info", "warning", "error", "critical"]
    assert parameters["rule"]["type"] == "integer" and parameters["rule"]["minimum"] == 1
    for params, field in [({"rule": "1.5"}, "rule"), ({"rule": "0"}, "rule"), ({"rule": str(2 ** 64)}, "rule"),
                          ({"status": "closed"}, "status"), ({"org": "!"}, "org")]:
        response = personas.member.get("alerts/incidents", params)
        assert response.status_code == 400 and field in response.json()["errors"], (params, response.content)


@pytest.mark.parametrize(("path", "method", "codes"), [
    ("rules", "get", {"200", "400", "401", "403", "404"}),
    ("rules", "post", {"201", "400", "401", "403", "409", "413", "415"}),
    ("rules/{id}", "get", {"200", "401", "403", "404"}),
    ("rules/{id}", "patch", {"200", "400", "401", "403", "404", "409", "413", "415"}),
    ("rules/{id}", "delete", {"204", "401", "403", "404"}),
    ("incidents", "get", {"200", "400", "401", "403", "404"}),
    ("incidents/{id}", "get", {"200", "401", "403", "404"}),
    ("incidents/{id}/acknowledge", "post", {"200", "400", "401", "403", "404", "409", "413", "415"}),
    ("incidents/{id}/resolve", "post", {"200", "400", "401", "403", "404", "409", "413", "415"}),
    ("incidents/{id}/silence", "post", {"200", "400", "401", "403", "404", "409", "413", "415"}),
])
def test_every_operation_documents_its_errors(schema, path, method, codes):
    responses = operation(schema, path, method)["responses"]
    assert codes <= set(responses)
    if "400" in responses:
        assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FieldErrors"}


def test_a_duplicate_name_is_a_documented_409_and_warnings_a_documented_list(personas, schema):
    for path, method in [("rules", "post"), ("rules/{id}", "patch")]:
        responses = operation(schema, path, method)["responses"]
        assert "already has a rule with this name" in responses["409"]["description"]
        assert responses["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDetail"}
        saved = responses["201" if method == "post" else "200"]["content"]["application/json"]["schema"]
        assert saved == {"$ref": "#/components/schemas/SavedAlertRule"}
    warnings = schema["components"]["schemas"]["SavedAlertRule"]["properties"]["warnings"]
    assert warnings["type"] == "array" and warnings["items"]["type"] == "string"
    assert "warnings" in schema["components"]["schemas"]["SavedAlertRule"]["required"]
    created = personas.member.post("alerts/rules", SEED_BODY)
    assert created.status_code == 201 and conforms(schema, "SavedAlertRule", created.json()), created.content
    conflict = personas.member.post("alerts/rules", SEED_BODY)
    assert conflict.status_code == 409 and conforms(schema, "ErrorDetail", conflict.json()), conflict.content
    changed = personas.member.patch(f"alerts/rules/{created.json()['id']}", {"threshold": 7})
    assert changed.status_code == 200 and conforms(schema, "SavedAlertRule", changed.json()), changed.content


def test_a_non_json_body_is_a_415_and_a_repeat_a_409(personas):
    incident = firing_incident(personas.org)
    url = f"{ALERTS}/incidents/{incident.pk}/acknowledge"
    assert personas.member.client.post(url, "note", content_type="text/plain").status_code == 415
    assert personas.member.client.post(f"{ALERTS}/rules", "x", content_type="text/plain").status_code == 415
    assert personas.member.post(url[len("/api/v1/analytics/"):]).status_code == 200
    response = personas.member.post(url[len("/api/v1/analytics/"):])
    assert response.status_code == 409 and "detail" in response.json()


def test_ids_beyond_64_bits_are_not_a_500(personas):
    assert personas.member.get(f"alerts/rules/{2 ** 64}").status_code == 404
    assert personas.member.post(f"alerts/incidents/{2 ** 64}/resolve").status_code == 404
    assert not AlertRule.objects.filter(org=personas.org).exists()


@pytest.mark.parametrize("change", [
    {"tags": {"\ud800": "x"}}, {"tags": {"k": "\udfff"}}, {"labels": {"a": "\ud800"}}, {"group_by": ["\ud800"]},
    {"name": "\ud800"}, {"metric_name": "m\udfff"}, {"description": "\ud800"},
])
def test_lone_surrogates_are_a_400_not_a_500(personas, change):
    text = json.dumps({**SEED_BODY, **change})  # "\ud800" escapes: JSON text that parses to a lone surrogate
    response = personas.member.client.post(f"{ALERTS}/rules", text, content_type="application/json")
    assert response.status_code == 400 and set(response.json()["errors"]) == set(change), response.content
