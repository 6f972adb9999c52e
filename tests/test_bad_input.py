"""Bad input at the ingest endpoints, case by case (docs/reliability-faults.md, "Bad input").

Each case posts one body to one endpoint with Django's test client and asserts the status API.md promises
(400 naming the field in ``{"errors": ...}``, 413 for a body over 10 MB, 415 for a body that is not JSON),
that nothing was stored, and so that no 500 ever answers. The good-but-odd cases (emoji, RTL marks, SQL
meta-characters) are stored and read back unchanged. Runs on SQLite and on PostgreSQL, where a NUL byte in
text would otherwise fail in the database.

The strictness decided here and in the contracts: JSON numbers must be numbers (``"12"`` is a 400, since a
client that sends strings has a bug worth hearing about); NaN and Infinity, which Python's JSON reader
accepts although RFC 8259 does not, are a 400 naming the field; a timestamp is accepted from the retention
period ago to 5 minutes ahead.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.utils import timezone

from analytics.models import MetricEvent, MetricSeries, Skill, SkillExecution, SkillRating

API = "/api/v1/analytics/"
METRIC = {"metric_name": "queue.depth", "value": 3.5}
EXECUTION = {"skill_id": "parse_json", "success": True, "latency_ms": 12.5}
RATING = {"skill_id": "parse_json", "rating": 4}
VALID = {"metrics/record": METRIC, "metrics/batch": METRIC, "skills/executions": EXECUTION,
         "skills/ratings": RATING}
TEN_MB = 10 * 1024 * 1024
SQL = "'; DROP TABLE analytics_metricevent; --"


def stored() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (MetricEvent, MetricSeries, Skill, SkillExecution, SkillRating)}


def post(persona, path: str, body: bytes, content_type: str = "application/json"):
    return persona.client.post(API + path, data=body, content_type=content_type)


def with_field(path: str, **fields) -> bytes:
    return json.dumps({**VALID[path], **fields}).encode()


def raw_field(path: str, name: str, literal: str) -> bytes:
    """The endpoint's valid item with ``name`` set to a JSON literal written by hand (``NaN``, ``"\\ud800"``)."""
    item = {key: value for key, value in VALID[path].items() if key != name}
    return json.dumps(item).encode()[:-1] + f', "{name}": {literal}}}'.encode()


def in_the(days: float = 0, minutes: float = 0) -> str:
    return (timezone.now() + timedelta(days=days, minutes=minutes)).isoformat()


def tags(count: int, value: str = "v") -> dict[str, str]:
    return {f"k{number}": value for number in range(count)}


# --- Rejected: (endpoint, body, content type, status, field named in the errors) ------------------------------

INGEST = list(VALID)
JSON = "application/json"


def rejected_cases():
    for path in INGEST:
        yield pytest.param(path, b'{"metric_name": "m", "value": ', JSON, 400, "body", id=f"{path}-invalid-json")
        yield pytest.param(path, b"\xff\xfe not utf-8", JSON, 400, "body", id=f"{path}-not-utf8")
        yield pytest.param(path, b'"just a string"', JSON, 400, "body", id=f"{path}-json-string")
        yield pytest.param(path, b"[]", JSON, 400, "non_field_errors", id=f"{path}-empty-batch")
        yield pytest.param(path, b'{"events": {}}', JSON, 400, "events", id=f"{path}-events-not-a-list")
        yield pytest.param(path, with_field(path), "text/plain", 415, None, id=f"{path}-text-plain")
        yield pytest.param(path, b"metric_name=m&value=1", "application/x-www-form-urlencoded", 415, None,
                           id=f"{path}-form-encoded")
        yield pytest.param(path, b"[" + b" " * TEN_MB + b"]", JSON, 413, "body", id=f"{path}-over-10-mb")
        yield pytest.param(path, json.dumps([VALID[path]] * (settings.API_MAX_BATCH_ITEMS + 1)).encode(), JSON,
                           400, "non_field_errors", id=f"{path}-oversized-batch")
        yield pytest.param(path, raw_field(path, "timestamp", '"1900-01-01T00:00:00Z"'), JSON, 400, "timestamp",
                           id=f"{path}-year-1900")
        yield pytest.param(path, raw_field(path, "timestamp", '"9999-12-31T23:59:59Z"'), JSON, 400, "timestamp",
                           id=f"{path}-year-9999")
        yield pytest.param(path, with_field(path, timestamp=in_the(minutes=10)), JSON, 400, "timestamp",
                           id=f"{path}-10-minutes-ahead")
        yield pytest.param(path, with_field(path, timestamp=in_the(days=-settings.ANALYTICS_DB_RETENTION_DAYS - 1)),
                           JSON, 400, "timestamp", id=f"{path}-older-than-retention")
        yield pytest.param(path, raw_field(path, "timestamp", '"10000-01-01T00:00:00Z"'), JSON, 400, "timestamp",
                           id=f"{path}-year-10000")
        yield pytest.param(path, raw_field(path, "timestamp", '"yesterday"'), JSON, 400, "timestamp",
                           id=f"{path}-timestamp-words")
        yield pytest.param(path, raw_field(path, "timestamp", "1e30"), JSON, 400, "timestamp",
                           id=f"{path}-timestamp-number")
        yield pytest.param(path, raw_field(path, "event_id", '"' + "e" * 129 + '"'), JSON, 400, "event_id",
                           id=f"{path}-event-id-too-long")

    for path in ("metrics/record", "metrics/batch"):
        for literal in ("NaN", "Infinity", "-Infinity", "1e400", '"12"', "true", "null", '"NaN"'):
            yield pytest.param(path, raw_field(path, "value", literal), JSON, 400, "value",
                               id=f"{path}-value-{literal.strip(chr(34))}")
        yield pytest.param(path, with_field(path, metric_type="counter", value=-1), JSON, 400, "value",
                           id=f"{path}-negative-counter")
        yield pytest.param(path, with_field(path, metric_type="bucket"), JSON, 400, "metric_type",
                           id=f"{path}-unknown-type")
        yield pytest.param(path, with_field(path, tags=tags(21)), JSON, 400, "tags", id=f"{path}-21-tags")
        yield pytest.param(path, with_field(path, tags=tags(51)), JSON, 400, "tags", id=f"{path}-51-tags")
        yield pytest.param(path, with_field(path, tags={"k": "v" * 10_000}), JSON, 400, "tags",
                           id=f"{path}-10k-char-tag-value")
        yield pytest.param(path, with_field(path, tags={"k" * 65: "v"}), JSON, 400, "tags", id=f"{path}-long-tag-key")
        yield pytest.param(path, with_field(path, tags={"": "v"}), JSON, 400, "tags", id=f"{path}-empty-tag-key")
        yield pytest.param(path, with_field(path, tags={"k": 5}), JSON, 400, "tags", id=f"{path}-numeric-tag-value")
        yield pytest.param(path, with_field(path, tags=["k:v"]), JSON, 400, "tags", id=f"{path}-tags-a-list")
        yield pytest.param(path, with_field(path, tags={"k": "a\u0000b"}), JSON, 400, "tags",
                           id=f"{path}-nul-in-tag-value")
        yield pytest.param(path, with_field(path, metric_name="queue\u0000depth"), JSON, 400, "metric_name",
                           id=f"{path}-nul-in-name")
        yield pytest.param(path, with_field(path, metric_name="a\x1bb"), JSON, 400, "metric_name",
                           id=f"{path}-escape-in-name")
        yield pytest.param(path, with_field(path, metric_name="a\u0085b"), JSON, 400, "metric_name",
                           id=f"{path}-c1-control-in-name")
        yield pytest.param(path, raw_field(path, "metric_name", '"lone \\ud800 surrogate"'), JSON, 400,
                           "body", id=f"{path}-lone-surrogate-in-name")
        yield pytest.param(path, raw_field(path, "tags", '{"k": "\\udfff"}'), JSON, 400, "body",
                           id=f"{path}-lone-surrogate-in-tag")
        yield pytest.param(path, with_field(path, metric_name="m" * 201), JSON, 400, "metric_name",
                           id=f"{path}-name-too-long")
        yield pytest.param(path, with_field(path, metric_name="   "), JSON, 400, "metric_name",
                           id=f"{path}-blank-name")
        yield pytest.param(path, with_field(path, event_id="retry\u00001"), JSON, 400, "event_id",
                           id=f"{path}-nul-in-event-id")
        yield pytest.param(path, with_field(path, event_id="a\nb"), JSON, 400, "event_id",
                           id=f"{path}-newline-in-event-id")

    path = "skills/executions"
    for literal in ("-1", "-0.001", '"12"', "NaN", "Infinity", "null"):
        yield pytest.param(path, raw_field(path, "latency_ms", literal), JSON, 400, "latency_ms",
                           id=f"{path}-latency-{literal.strip(chr(34))}")
    for literal in ('"true"', "1", "null"):
        yield pytest.param(path, raw_field(path, "success", literal), JSON, 400, "success",
                           id=f"{path}-success-{literal.strip(chr(34))}")
    yield pytest.param(path, with_field(path, skill_id="parse\u0000json"), JSON, 400, "skill_id",
                       id=f"{path}-nul-in-skill-id")
    yield pytest.param(path, with_field(path, skill_id="a b"), JSON, 400, "skill_id", id=f"{path}-space-in-skill-id")
    yield pytest.param(path, with_field(path, skill_id="executions"), JSON, 400, "skill_id",
                       id=f"{path}-reserved-skill-id")
    yield pytest.param(path, with_field(path, user_id="u\u0000"), JSON, 400, "user_id", id=f"{path}-nul-in-user-id")
    yield pytest.param(path, raw_field(path, "user_id", '"\\ud83d"'), JSON, 400, "body",
                       id=f"{path}-lone-surrogate-in-user-id")
    yield pytest.param(path, with_field(path, error_type="x\u0000"), JSON, 400, "error_type",
                       id=f"{path}-nul-in-error-type")
    yield pytest.param(path, with_field(path, event_id="e\u0000"), JSON, 400, "event_id",
                       id=f"{path}-nul-in-event-id")

    path = "skills/ratings"
    for literal in ("0", "6", "-1", "4.5", '"5"', "true", "NaN", "null"):
        yield pytest.param(path, raw_field(path, "rating", literal), JSON, 400, "rating",
                           id=f"{path}-rating-{literal.strip(chr(34))}")
    yield pytest.param(path, with_field(path, skill_id="x" * 201), JSON, 400, "skill_id",
                       id=f"{path}-skill-id-too-long")


REJECTED = list(rejected_cases())


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body", "content_type", "status", "field"), REJECTED)
def test_bad_input_is_refused_with_the_field_named_and_nothing_stored(personas, path, body, content_type, status,
                                                                      field):
    before = stored()
    response = post(personas.member, path, body, content_type)
    assert response.status_code == status, response.content[:500]
    answer = response.json()
    if status == 415:
        assert "detail" in answer
    else:
        errors = answer["errors"]
        named = errors if isinstance(errors, dict) else {key for error in errors for key in error}
        assert field in named, answer
    assert stored() == before


def test_the_rejected_cases_cover_every_ingest_endpoint():
    """The table is what the report counts: every endpoint has its transport cases and its own fields."""
    per_endpoint = {path: sum(1 for case in REJECTED if case.values[0] == path) for path in INGEST}
    assert all(count >= 17 for count in per_endpoint.values()), per_endpoint


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "field", "literal"), [
    (path, field, literal)
    for path, field in (("metrics/record", "value"), ("metrics/batch", "value"), ("skills/executions", "latency_ms"))
    for literal in ("NaN", "Infinity", "-Infinity", "1e400")
])
def test_nan_and_infinity_are_refused_as_not_finite(personas, path, field, literal):
    """Python's JSON reader (and the server's) accepts these; the contract does not, and says why."""
    response = post(personas.member, path, raw_field(path, field, literal))
    assert (response.status_code, response.json()) == (400, {"errors": {field: ["Must be a finite number."]}})


# --- A batch: one bad item refuses the whole batch, naming the item -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "bad_item", "field"), [
    ("metrics/batch", {**METRIC, "value": "12"}, "value"),
    ("skills/executions", {**EXECUTION, "latency_ms": -5}, "latency_ms"),
    ("skills/ratings", {**RATING, "rating": 0}, "rating"),
])
def test_one_bad_item_in_a_batch_refuses_the_batch_naming_its_index(personas, path, bad_item, field):
    before = stored()
    response = post(personas.member, path, json.dumps({"events": [VALID[path], VALID[path], bad_item]}).encode())
    assert response.status_code == 400
    assert response.json() == {"errors": [{"index": 2, field: response.json()["errors"][0][field]}]}
    assert stored() == before


# --- Accepted: odd but valid input is stored and read back unchanged ----------------------------------------------

ODD_TEXTS = [
    pytest.param("latency \U0001f680 \u2705", id="emoji"),
    pytest.param("\u05e9\u05dc\u05d5\u05dd \u200fRTL\u200e mark", id="rtl-marks"),
    pytest.param("zero\u200bwidth \ufeffbom", id="zero-width"),
    pytest.param("e\u0301 combining \u00e9 precomposed", id="combining"),
    pytest.param("\u6f22\u5b57 \u0928\u092e\u0938\u094d\u0924\u0947", id="cjk-devanagari"),
    pytest.param("\U0001f468\u200d\U0001f469\u200d\U0001f467 family", id="zwj-sequence"),
    pytest.param(SQL, id="sql-meta"),
    pytest.param("100% _like_ \\ escape ' \" `", id="like-wildcards-quotes"),
    pytest.param("<script>alert(1)</script>", id="html"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_odd_but_printable_text_is_stored_and_read_back_unchanged(personas, text):
    member = personas.member
    response = post(member, "metrics/record", json.dumps(
        {"metric_name": text, "value": 7, "tags": {"label": text, text[:64]: "key"}}).encode())
    assert response.status_code == 201, response.content
    names = [row["name"] for row in member.get("metrics").json()["results"]]
    assert names == [text]
    grouped = member.get(f"metrics/{quote(text, safe='')}/statistics", {"group_by": "label"}).json()
    assert [(group["tags"], group["count"]) for group in grouped["groups"]] == [({"label": text}, 1)]
    assert MetricSeries.objects.get().name == text


@pytest.mark.django_db
@pytest.mark.parametrize("user_id", ODD_TEXTS)
def test_odd_user_ids_and_sql_in_skill_fields_are_stored_verbatim(personas, user_id):
    member = personas.member
    skill_id = "O'Brien\";--\U0001f680"
    response = post(member, "skills/executions", json.dumps(
        {**EXECUTION, "skill_id": skill_id, "user_id": user_id, "error_type": SQL}).encode())
    assert response.status_code == 201, response.content
    assert post(member, "skills/ratings", json.dumps({"skill_id": skill_id, "rating": 5.0,
                                                      "user_id": user_id}).encode()).status_code == 201
    summary = member.get(f"skills/{quote(skill_id, safe='')}").json()
    assert (summary["skill_id"], summary["execution_count"], summary["rating_avg"]) == (skill_id, 1, 5.0)
    execution = SkillExecution.objects.get()
    assert (execution.user_id, execution.error_type) == (user_id, SQL)
    assert SkillRating.objects.get().user_id == user_id


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "fields"), [
    pytest.param("metrics/record", {"timestamp": "__4_minutes_ahead__"}, id="metric-4-minutes-ahead"),
    pytest.param("skills/executions", {"timestamp": "__near_retention__"}, id="execution-near-retention"),
    pytest.param("metrics/record", {"tags": tags(20, "v" * 256)}, id="metric-20-tags-of-256"),
    pytest.param("metrics/record", {"metric_name": "m" * 200}, id="metric-name-of-200"),
    pytest.param("skills/executions", {"latency_ms": 0}, id="zero-latency"),
    pytest.param("skills/ratings", {"rating": 1}, id="rating-1"),
    pytest.param("skills/ratings", {"rating": 5}, id="rating-5"),
])
def test_values_at_the_limits_are_accepted(personas, path, fields):
    times = {"__4_minutes_ahead__": in_the(minutes=4),
             "__near_retention__": in_the(days=-settings.ANALYTICS_DB_RETENTION_DAYS + 1)}
    fields = {key: times.get(value, value) if isinstance(value, str) else value for key, value in fields.items()}
    before = stored()
    response = post(personas.member, path, with_field(path, **fields))
    assert (response.status_code, response.json()) == (201, {"accepted": 1, "duplicates": 0})
    assert stored() != before


# --- OTLP/JSON: the receiver's own answers (OTLP/HTTP), never a 500 ------------------------------------------------

OTLP = "/otlp/v1/metrics"


def otlp_gauge(name: str, value_field: str = '"asDouble": 1.5') -> bytes:
    now_ns = int(timezone.now().timestamp() * 1e9)
    point = f'{{"timeUnixNano": "{now_ns}", {value_field}}}'
    return (f'{{"resourceMetrics": [{{"scopeMetrics": [{{"metrics": [{{"name": {json.dumps(name)}, '
            f'"gauge": {{"dataPoints": [{point}]}}}}]}}]}}]}}').encode()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "content_type", "status"), [
    pytest.param(b'{"resourceMetrics": [', JSON, 400, id="invalid-json"),
    pytest.param(b"[" + b" " * TEN_MB + b"]", JSON, 413, id="over-10-mb"),
    pytest.param(otlp_gauge("m"), "text/plain", 415, id="text-plain"),
])
def test_otlp_json_refuses_bad_bodies_with_its_status(personas, body, content_type, status):
    before = stored()
    response = personas.member.client.post(OTLP, data=body, content_type=content_type)
    assert response.status_code == status
    assert stored() == before


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    pytest.param(otlp_gauge("bad\u0000name"), id="nul-in-name"),
    pytest.param(otlp_gauge("m", '"asDouble": "NaN"'), id="nan-value"),
    pytest.param(otlp_gauge("m", '"asDouble": "Infinity"'), id="infinite-value"),
])
def test_otlp_json_rejects_bad_points_as_partial_success(personas, body):
    before = stored()
    response = personas.member.client.post(OTLP, data=body, content_type=JSON)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert response.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert stored() == before
