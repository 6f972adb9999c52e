"""The skills API (API.md, Skills): ingest batches, idempotency, org scoping, a skill's figures and trend."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from analytics.models import Skill, SkillExecution, SkillInstall, SkillRating
from analytics.platform.windows import Window
from analytics.services import metrics_query as query

pytestmark = pytest.mark.django_db


def ago(**delta) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


def execution(skill_id="parse_json", success=True, latency_ms=100.0, **extra):
    return {"skill_id": skill_id, "success": success, "latency_ms": latency_ms, **extra}


def test_an_execution_batch_is_stored_as_rows_and_as_series_of_the_query_layer(personas):
    batch = [execution(latency_ms=float(v), success=v % 5 != 0, user_id="u1", timestamp=ago(minutes=v))
             for v in range(1, 21)]
    response = personas.member.post("skills/executions", {"events": batch})
    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 20, "duplicates": 0}
    assert SkillExecution.objects.filter(org=personas.org, skill_id="parse_json").count() == 20
    assert Skill.objects.get(skill_id="parse_json")
    window = Window(timezone.now() - timedelta(hours=1), timezone.now())
    latency = query.statistics("skill.latency_ms", window, org=personas.org, tags={"skill_id": "parse_json"})
    assert latency.count == 20
    failures = query.statistics("skill.executions", window, org=personas.org,
                                tags={"skill_id": "parse_json", "success": "false"})
    assert failures.sum == 4


def test_one_object_and_a_plain_array_are_accepted_too(personas):
    assert personas.member.post("skills/executions", execution()).json() == {"accepted": 1, "duplicates": 0}
    assert personas.member.post("skills/executions/", [execution(), execution()]).json()["accepted"] == 2


def test_posting_the_same_batch_twice_stores_it_once(personas):
    batch = [execution(event_id=f"e{i}", latency_ms=float(i)) for i in range(5)]
    assert personas.member.post("skills/executions", batch).json() == {"accepted": 5, "duplicates": 0}
    assert personas.member.post("skills/executions", batch).json() == {"accepted": 0, "duplicates": 5}
    assert SkillExecution.objects.count() == 5
    stats = query.statistics("skill.executions", Window(timezone.now() - timedelta(hours=1), timezone.now()))
    assert stats.count == 5
    ratings = [{"skill_id": "parse_json", "rating": 4, "event_id": "r1"}]
    installs = [{"skill_id": "parse_json", "event_id": "i1"}]
    for path, body, model in (("skills/ratings", ratings, SkillRating), ("skills/installs", installs, SkillInstall)):
        assert personas.member.post(path, body).json() == {"accepted": 1, "duplicates": 0}
        assert personas.member.post(path, body).json() == {"accepted": 0, "duplicates": 1}
        assert model.objects.count() == 1


def test_event_ids_are_per_org_and_per_family(personas):
    assert personas.member.post("skills/executions", execution(event_id="same")).json()["accepted"] == 1
    assert personas.outsider.post("skills/executions", execution(event_id="same")).json()["accepted"] == 1
    assert personas.member.post("skills/installs", {"skill_id": "parse_json", "event_id": "same"}).json() == {
        "accepted": 1, "duplicates": 0}


def test_a_batch_with_one_bad_item_stores_nothing_and_names_the_item_and_field(personas):
    batch = [execution(), execution(latency_ms=-1), execution()]
    response = personas.member.post("skills/executions", batch)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"index": 1, "latency_ms": ["Must be at least 0."]}]}
    assert SkillExecution.objects.count() == 0
    assert not Skill.objects.exists()
    assert query.list_metrics() == []


@pytest.mark.parametrize("item, field", [
    ({"success": True, "latency_ms": 1}, "skill_id"),
    (execution(skill_id="executions"), "skill_id"),
    (execution(skill_id="leaderboard"), "skill_id"),
    (execution(skill_id="a/b"), "skill_id"),
    (execution(success="yes"), "success"),
    ({"skill_id": "x", "success": True}, "latency_ms"),
    (execution(latency_ms="fast"), "latency_ms"),
    (execution(timestamp="yesterday"), "timestamp"),
    (execution(timestamp=(timezone.now() + timedelta(hours=1)).isoformat()), "timestamp"),
    (execution(org_id="globex"), "org_id"),
    (execution(event_id="x" * 129), "event_id"),
])
def test_bad_executions_get_400_naming_the_field(personas, item, field):
    response = personas.member.post("skills/executions", item)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


@pytest.mark.parametrize("rating", [0, 6, 4.5, "5", True, None])
def test_a_rating_must_be_an_integer_from_1_to_5(personas, rating):
    response = personas.member.post("skills/ratings", {"skill_id": "parse_json", "rating": rating})
    assert response.status_code == 400
    assert "rating" in response.json()["errors"]


def test_a_rating_of_4_point_0_is_the_integer_4_as_json_schema_says(personas):
    # JSON Schema's "integer" is any number with no fractional part: 4.0 is one, and the schema says integer.
    response = personas.member.post("skills/ratings", {"skill_id": "parse_json", "rating": 4.0, "user_id": "u"})
    assert response.status_code == 201
    assert SkillRating.objects.get().rating == 4


def test_an_item_naming_its_own_org_is_accepted_another_org_is_refused(personas):
    assert personas.member.post("skills/installs", {"skill_id": "s", "org_id": "acme"}).status_code == 201
    response = personas.member.post("skills/installs", [{"skill_id": "s"}, {"skill_id": "s", "org_id": "globex"}])
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 1, "org_id": ["Must be this token's organisation 'acme'."]}]


def test_read_only_tokens_and_anonymous_callers_cannot_write(personas):
    assert personas.reader.post("skills/executions", execution()).status_code == 403
    assert personas.anonymous.post("skills/executions", execution()).status_code == 401
    assert personas.staff.post("skills/executions", execution()).status_code == 400  # must name ?org=
    assert personas.staff.post("skills/executions?org=acme", execution()).status_code == 201


def test_a_users_new_rating_replaces_the_old_one_anonymous_ratings_replace_nothing(personas):
    personas.member.post("skills/ratings", {"skill_id": "s", "rating": 1, "user_id": "ann"})
    personas.member.post("skills/ratings", {"skill_id": "s", "rating": 5, "user_id": "ann"})
    personas.member.post("skills/ratings", [{"skill_id": "s", "rating": 2}, {"skill_id": "s", "rating": 2}])
    body = personas.member.get("skills/s").json()
    assert body["rating_count"] == 3
    assert body["rating_avg"] == pytest.approx((5 + 2 + 2) / 3)


def test_an_older_rating_arriving_late_does_not_replace_a_newer_one(personas):
    personas.member.post("skills/ratings", {"skill_id": "s", "rating": 5, "user_id": "ann", "timestamp": ago(hours=1)})
    personas.member.post("skills/ratings", {"skill_id": "s", "rating": 1, "user_id": "ann", "timestamp": ago(hours=2)})
    assert personas.member.get("skills/s").json()["rating_avg"] == 5


def test_a_batch_rating_twice_by_one_user_keeps_the_newest(personas):
    batch = [{"skill_id": "s", "rating": 2, "user_id": "bob", "timestamp": ago(minutes=1)},
             {"skill_id": "s", "rating": 4, "user_id": "bob", "timestamp": ago(minutes=5)}]
    assert personas.member.post("skills/ratings", batch).status_code == 201
    body = personas.member.get("skills/s").json()
    assert (body["rating_avg"], body["rating_count"]) == (2, 1)


def test_skill_detail_has_the_api_md_keys_and_numpy_percentiles(personas):
    latencies = [12.0, 40.0, 41.0, 55.5, 80.0, 120.0, 300.0, 310.0, 999.0, 15.0, 16.0]
    batch = [execution(latency_ms=v, success=i % 4 != 3, timestamp=ago(minutes=i + 1))
             for i, v in enumerate(latencies)]
    personas.member.post("skills/executions", batch)
    personas.member.post("skills/executions", execution(timestamp=ago(hours=30)))  # outside the default 24h
    personas.member.post("skills/ratings", [{"skill_id": "parse_json", "rating": 4}, {"skill_id": "parse_json",
                                                                                      "rating": 5}])
    personas.member.post("skills/installs", [{"skill_id": "parse_json", "user_id": "u"}] * 3)
    response = personas.member.get("skills/parse_json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "skill_id", "execution_count", "success_count", "failure_count", "success_rate", "avg_latency_ms",
        "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "rating_avg", "rating_count", "install_count",
        "health_score", "health_components", "start", "end"}
    assert (body["execution_count"], body["success_count"], body["failure_count"]) == (11, 9, 2)
    assert body["success_rate"] == pytest.approx(9 / 11)
    for key, percentile in (("p50_latency_ms", 50), ("p95_latency_ms", 95), ("p99_latency_ms", 99)):
        assert body[key] == pytest.approx(np.percentile(latencies, percentile))
    assert body["avg_latency_ms"] == pytest.approx(np.mean(latencies))
    assert (body["rating_avg"], body["rating_count"], body["install_count"]) == (4.5, 2, 3)
    assert 0 <= body["health_score"] <= 100
    assert set(body["health_components"]) >= {"success", "latency", "rating", "volume", "explicit"}
    assert body["end"].endswith("Z")
    assert personas.member.get("skills/parse_json", {"days": 2}).json()["execution_count"] == 12


def test_skill_detail_is_scoped_to_the_org_and_404_without_data(personas):
    personas.member.post("skills/executions", execution(skill_id="mine"))
    assert personas.member.get("skills/mine").status_code == 200
    assert personas.outsider.get("skills/mine").status_code == 404
    assert personas.member.get("skills/never_seen").status_code == 404
    personas.outsider.post("skills/executions", execution(skill_id="mine"))
    assert personas.outsider.get("skills/mine").json()["execution_count"] == 1
    assert personas.staff.get("skills/mine").json()["execution_count"] == 2
    assert personas.staff.get("skills/mine", {"org": "globex"}).json()["execution_count"] == 1
    assert personas.reader.get("skills/mine").json()["execution_count"] == 1


def test_a_skill_with_only_ratings_has_figures_but_no_health(personas):
    personas.member.post("skills/ratings", {"skill_id": "rated", "rating": 3})
    body = personas.member.get("skills/rated").json()
    assert body["execution_count"] == 0
    assert body["success_rate"] is None
    assert body["health_score"] is None


def test_bad_windows_get_400(personas):
    personas.member.post("skills/executions", execution())
    assert "hours" in personas.member.get("skills/parse_json", {"hours": "x"}).json()["errors"]
    assert personas.member.get("skills/parse_json", {"hours": 1, "days": 1}).status_code == 400


def test_trend_per_hour_has_executions_success_rate_and_p95(personas):
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    two_hours_ago = hour - timedelta(hours=2)
    batch = [execution(latency_ms=v, success=v < 40, timestamp=(two_hours_ago + timedelta(minutes=v)).isoformat())
             for v in (10.0, 20.0, 30.0, 50.0)]
    personas.member.post("skills/executions", batch)
    response = personas.member.get("skills/parse_json/trend", {"interval": "hour"})
    assert response.status_code == 200
    body = response.json()
    assert body["interval"] == "hour"
    points = {point["timestamp"]: point for point in body["points"]}
    key = two_hours_ago.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert points[key]["executions"] == 4
    assert points[key]["success_rate"] == 0.75
    assert points[key]["p95_latency_ms"] == pytest.approx(np.percentile([10, 20, 30, 50], 95))
    empty = [point for stamp, point in points.items() if stamp != key]
    assert all(point["executions"] == 0 and point["success_rate"] is None for point in empty)
    assert 24 <= len(body["points"]) <= 26


def test_trend_per_day_defaults_to_30_days_and_refuses_other_intervals(personas):
    personas.member.post("skills/executions", execution(timestamp=ago(days=3)))
    body = personas.member.get("skills/parse_json/trend", {"interval": "day"}).json()
    assert 30 <= len(body["points"]) <= 31
    assert sum(point["executions"] for point in body["points"]) == 1
    response = personas.member.get("skills/parse_json/trend", {"interval": "week"})
    assert response.status_code == 400
    assert "interval" in response.json()["errors"]
    assert personas.member.get("skills/nothing/trend").status_code == 404


def test_a_trend_of_more_than_20000_points_is_a_400_naming_the_interval(personas):
    personas.member.post("skills/executions", execution(timestamp=ago(hours=1)))
    response = personas.member.get("skills/parse_json/trend", {"interval": "hour", "days": 1000})
    assert response.status_code == 400
    (message,) = response.json()["errors"]["interval"]
    assert "at most 20000 points" in message
    assert personas.member.get("skills/parse_json/trend", {"interval": "day", "days": 1000}).status_code == 200


def test_executions_carry_the_skill_version_into_the_catalogue(personas):
    personas.member.post("skills/executions", [
        execution(skill_version="1.0", timestamp=ago(hours=2)),
        execution(skill_version="1.1", timestamp=ago(hours=1)),
    ])
    personas.member.post("skills/executions", execution(skill_version="0.9", timestamp=ago(hours=3)))
    skill = Skill.objects.get(skill_id="parse_json")
    assert skill.version == "1.1"
    assert skill.last_recorded_at > datetime.now(UTC) - timedelta(hours=1, minutes=1)
