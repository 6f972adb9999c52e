"""GET skills/leaderboard, skills/adoption and skills/recommendations (API.md, Skills), and the client's boards."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import create_analytics_client
from analytics.models import LeaderboardEntry, RecommendationLog
from analytics.services import leaderboards
from analytics.services.leaderboards import compute_leaderboards
from analytics.services.skills import ExecutionItem, RatingItem, record_executions, record_ratings

pytestmark = pytest.mark.django_db


def runs(skill_id, count, *, hours_ago=1.0, user_id=None, success=True, latency=100.0):
    at = timezone.now() - timedelta(hours=hours_ago)
    return [ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency, timestamp=at, user_id=user_id)
            for _ in range(count)]


def board(response):
    assert response.status_code == 200, response.json()
    return [(row["rank"], row["skill_id"], row["score"]) for row in response.json()["results"]]


# --- Leaderboard ---------------------------------------------------------------------------


def test_the_endpoint_serves_the_cached_board_after_the_job_ran_until_it_is_stale(personas):
    record_executions(personas.org, runs("a", 3) + runs("b", 1))
    compute_leaderboards()
    computed_at = LeaderboardEntry.objects.filter(org=personas.org).first().computed_at
    record_executions(personas.org, runs("c", 10))  # after the job: not on the cached board
    first = personas.member.get("skills/leaderboard")
    assert board(first) == [(1, "a", 3), (2, "b", 1)]
    body = first.json()
    assert body["type"] == "usage" and body["cached"] is True
    assert body["computed_at"] == computed_at.isoformat().replace("+00:00", "Z")
    assert body["results"][0]["execution_count"] == 3
    assert personas.member.get("skills/leaderboard/").json() == body  # the same, served again
    # The board grows stale (its computed_at moved back past MAX_AGE): computed again on read.
    LeaderboardEntry.objects.update(computed_at=computed_at - leaderboards.MAX_AGE - timedelta(seconds=1))
    fresh = personas.member.get("skills/leaderboard")
    assert board(fresh) == [(1, "c", 10), (2, "a", 3), (3, "b", 1)]
    assert fresh.json()["cached"] is False
    assert personas.member.get("skills/leaderboard").json()["cached"] is True  # and cached again


@pytest.mark.parametrize("board_type, score", [
    ("usage", 50), ("rating", 35 / 11),
    ("most_improved", 100.0),  # 0 % → 100 %; no successful runs last week, so no latency term
])
def test_each_type_and_the_limit(personas, board_type, score):
    record_executions(personas.org, runs("x", 25, hours_ago=24 * 9, success=False) + runs("x", 25)
                      + runs("y", 25, hours_ago=24 * 9, success=False) + runs("y", 20) + runs("y", 4, success=False))
    record_ratings(personas.org, [RatingItem("x", 5, timezone.now(), user_id="u1"),
                                  RatingItem("y", 2, timezone.now(), user_id="u1")])
    response = personas.reader.get("skills/leaderboard", {"type": board_type, "limit": 1})
    assert board(response) == [(1, "x", pytest.approx(score))]
    assert response.json()["type"] == board_type
    assert len(personas.reader.get("skills/leaderboard", {"type": board_type}).json()["results"]) == 2


def test_trending_new_over_the_api(personas):
    record_executions(personas.org, runs("new", 12, hours_ago=24 * 10) + runs("new", 42))
    # First seen 10 days ago; (42 − 12) / max(12, 10) = 2.5.
    assert board(personas.member.get("skills/leaderboard", {"type": "trending_new"})) == [(1, "new", 2.5)]


@pytest.mark.parametrize("params, field", [
    ({"type": "popularity"}, "type"), ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"type": "rating", "days": "7"}, "days"), ({"hours": "1", "days": "1"}, "days"),
])
def test_bad_parameters_are_400_naming_the_field(personas, params, field):
    response = personas.member.get("skills/leaderboard", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_window_ranks_usage_in_it_computed_now(personas):
    record_executions(personas.org, runs("old", 5, hours_ago=30) + runs("new", 2))
    response = personas.member.get("skills/leaderboard", {"hours": "24"})
    assert board(response) == [(1, "new", 2)]
    assert response.json()["cached"] is False and "start" in response.json()
    assert not LeaderboardEntry.objects.exists()  # a windowed board is not the cached one


def test_org_scoping_a_token_reads_its_org_staff_all_or_one(personas):
    record_executions(personas.org, runs("mine", 2))
    record_executions(personas.other_org, runs("theirs", 5))
    compute_leaderboards()
    assert board(personas.member.get("skills/leaderboard")) == [(1, "mine", 2)]
    assert board(personas.outsider.get("skills/leaderboard")) == [(1, "theirs", 5)]
    assert board(personas.staff.get("skills/leaderboard")) == [(1, "theirs", 5), (2, "mine", 2)]
    assert board(personas.staff.get("skills/leaderboard", {"org": "acme"})) == [(1, "mine", 2)]
    assert personas.staff.get("skills/leaderboard", {"org": "nope"}).status_code == 400
    assert personas.anonymous.get("skills/leaderboard").status_code == 401


def test_the_reserved_words_are_routes_not_skill_ids(personas):
    for path in ("skills/leaderboard", "skills/adoption"):
        assert personas.member.get(path).status_code == 200
    assert personas.member.get("skills/recommendations", {"user_id": "u"}).status_code == 200


# --- Adoption ------------------------------------------------------------------------------


def test_adoption_over_the_default_30_days(personas):
    record_executions(personas.org, runs("a", 1, user_id="u1") + runs("b", 1, user_id="u1")
                      + runs("a", 1, user_id="u2") + runs("c", 1, hours_ago=24 * 40, user_id="u3"))
    response = personas.member.get("skills/adoption")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["skills_per_user"]["histogram"] == {"1": 1, "2": 1}  # u3's run is 40 days old
    assert body["org_adoption_rate"] == pytest.approx(2 / 3)  # a b of the catalogue a b c
    assert body["weekly_growth"]["this_week"]["executions"] == 3
    assert body["engaged_users"] == 0
    start, end = body["start"], body["end"]
    assert (timezone.datetime.fromisoformat(end) - timezone.datetime.fromisoformat(start)) == timedelta(days=30)
    assert personas.member.get("skills/adoption", {"days": "60"}).json()["skills_per_user"]["users"] == 3
    assert personas.outsider.get("skills/adoption").json()["skills_per_user"]["users"] == 0
    assert [row["org"] for row in personas.staff.get("skills/adoption").json()["orgs"]] == ["acme"]
    assert "days" in personas.member.get("skills/adoption", {"days": "-1"}).json()["errors"]


# --- Recommendations ---------------------------------------------------------------------


def test_recommendations_with_reasons_are_logged(personas):
    record_executions(personas.org, runs("parse_json", 1, user_id="me") + runs("parse_json", 1, user_id="n1")
                      + runs("csv", 1, user_id="n1") + runs("web", 3, user_id="p1"))
    response = personas.reader.get("skills/recommendations", {"user_id": "me"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["user_id"] == "me"
    assert body["results"] == [{"skill_id": "csv", "score": 0.5, "reason": "used by 1 of 1 users who use parse_json",
                                "strategy": "co_usage"}]
    row = RecommendationLog.objects.get()
    assert (row.org, row.user_id, row.skill_id, row.score) == (personas.org, "me", "csv", 0.5)
    new = personas.member.get("skills/recommendations", {"user_id": "newcomer", "limit": "1"}).json()
    assert new["results"][0]["skill_id"] == "parse_json"  # 2 users of 3; web has one
    assert new["results"][0]["strategy"] == "popularity"
    assert RecommendationLog.objects.count() == 2
    # Another org sees none of it; staff over all orgs log without an org.
    assert personas.outsider.get("skills/recommendations", {"user_id": "me"}).json()["results"] == []
    staff = personas.staff.get("skills/recommendations", {"user_id": "me"}).json()
    assert [row["skill_id"] for row in staff["results"]] == ["csv"]
    assert RecommendationLog.objects.filter(org__isnull=True).count() == 1


@pytest.mark.parametrize("params, field", [
    ({}, "user_id"), ({"user_id": ""}, "user_id"), ({"user_id": "x" * 201}, "user_id"),
    ({"user_id": "u", "limit": "0"}, "limit"), ({"user_id": "u", "start": "yesterday"}, "start"),
])
def test_recommendations_bad_parameters_are_400_naming_the_field(personas, params, field):
    response = personas.member.get("skills/recommendations", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not RecommendationLog.objects.exists()


def test_an_empty_user_id_is_a_400_naming_it(personas):
    response = personas.member.get("skills/recommendations", {"user_id": ""})
    assert response.status_code == 400
    assert response.json()["errors"] == {"user_id": ["Must not be blank."]}
    too_many = personas.member.get("skills/recommendations", {"user_id": "u", "limit": "101"})
    assert too_many.json()["errors"] == {"limit": ["Must be an integer from 1 to 100."]}


# --- The schema: one declaration validates, renders and documents ---------------------------


def _operation(persona, path):
    import yaml

    schema = yaml.safe_load(persona.get("/api/schema/").content)
    operation = schema["paths"][f"/api/v1/analytics/skills/{path}"]["get"]
    return schema, operation, {parameter["name"]: parameter for parameter in operation["parameters"]}


def test_the_schema_states_each_operations_parameters(personas):
    _, _, board = _operation(personas.member, "leaderboard")
    assert board["type"]["schema"]["enum"] == list(leaderboards.BOARD_TYPES)
    assert board["type"]["schema"]["default"] == "usage"
    assert (board["limit"]["schema"]["minimum"], board["limit"]["schema"]["maximum"]) == (1, leaderboards.CACHE_SIZE)
    assert {"hours", "days", "start", "end", "org"} <= set(board)
    _, _, adoption = _operation(personas.member, "adoption")
    assert set(adoption) == {"hours", "days", "start", "end", "org"}
    assert adoption["days"]["schema"]["minimum"] > 0
    _, _, recommended = _operation(personas.member, "recommendations")
    user_id = recommended["user_id"]
    assert user_id["required"] is True
    assert (user_id["schema"]["minLength"], user_id["schema"]["maxLength"]) == (1, 200)
    assert "pattern" in user_id["schema"]
    assert (recommended["limit"]["schema"]["minimum"], recommended["limit"]["schema"]["maximum"]) == (1, 100)
    assert not recommended["limit"].get("required")


def test_the_schema_states_each_answer_as_it_is_rendered(personas):
    schema, operation, _ = _operation(personas.member, "leaderboard")
    components = schema["components"]["schemas"]
    body = components[operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert set(body["required"]) == {"type", "computed_at", "cached", "description", "results"}
    assert {"start", "end"} <= set(body["properties"])  # only over a window: absent otherwise, never null
    rows = {item["$ref"].split("/")[-1] for item in body["properties"]["results"]["items"]["anyOf"]}
    assert rows == {"UsageRow", "RatingRow", "MostImprovedRow", "TrendingNewRow"}
    assert "execution_count" in components["UsageRow"]["required"]
    assert "latency_improvement_pct" in components["MostImprovedRow"]["required"]
    recommendation = components["Recommendation"]["properties"]
    assert set(recommendation) == {"skill_id", "score", "reason", "strategy"}  # used_by etc. stay internal
    adoption = components["Adoption"]
    assert "orgs" in adoption["properties"] and "orgs" not in adoption["required"]
    assert "histogram" in components["SkillsPerUser"]["required"]


def test_the_answers_have_exactly_the_fields_the_schema_states(personas):
    record_executions(personas.org, runs("a", 2, user_id="u1") + runs("a", 1, user_id="u2")
                      + runs("b", 1, user_id="u2"))
    cached = personas.member.get("skills/leaderboard").json()
    assert set(cached) == {"type", "computed_at", "cached", "description", "results"}
    assert set(cached["results"][0]) == {"rank", "skill_id", "score", "execution_count", "success_count",
                                         "failure_count", "success_rate"}
    assert cached["computed_at"].endswith("Z") and cached["results"][0]["score"] == 3
    windowed = personas.member.get("skills/leaderboard", {"hours": "2"}).json()
    assert set(windowed) == {"type", "computed_at", "cached", "description", "start", "end", "results"}
    assert windowed["start"].endswith("Z") and windowed["end"].endswith("Z")
    adoption = personas.member.get("skills/adoption").json()
    assert "orgs" not in adoption and adoption["engagement_since"].endswith("T00:00:00Z")
    assert set(adoption["weekly_growth"]["this_week"]) == {"start", "end", "executions", "active_users"}
    assert set(personas.staff.get("skills/adoption").json()["orgs"][0]) == {
        "org", "org_adoption_rate", "skills_used", "catalogue_size", "active_users"}
    recommended = personas.member.get("skills/recommendations", {"user_id": "u1"}).json()
    assert set(recommended) == {"user_id", "start", "end", "results"}
    assert set(recommended["results"][0]) == {"skill_id", "score", "reason", "strategy"}


# --- The client --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "db"])
def store(request):
    return create_analytics_client(request.param)


def test_the_clients_get_leaderboard_serves_every_type_from_the_cache(store):
    for _ in range(3):
        store.record_skill_usage("a", org_id="acme", user_id="u1")
    store.record_skill_usage("b", org_id="acme", user_id="u1", success=False)
    store.rate_skill("a", 4, org_id="acme", user_id="u1")
    store.rate_skill("b", 5, org_id="acme", user_id="u1")
    assert [(r["rank"], r["skill_id"], r["score"]) for r in store.get_leaderboard()] == [(1, "a", 3), (2, "b", 1)]
    rating = store.get_leaderboard(type="rating", org_id="acme")
    assert [(r["skill_id"], r["score"]) for r in rating] == [("b", pytest.approx(35 / 11)),
                                                            ("a", pytest.approx(34 / 11))]
    assert store.get_leaderboard(type="most_improved") == []  # under the minimum volume
    trending = store.get_leaderboard(type="trending_new", limit=1)
    assert [(r["skill_id"], r["score"]) for r in trending] == [("a", 0.3)]  # 3 runs / the floor of 10
    # Served from the cache now: a new run does not show until the job runs or the board is stale.
    store.record_skill_usage("b", org_id="acme")
    store.record_skill_usage("b", org_id="acme")
    store.record_skill_usage("b", org_id="acme")
    assert store.get_leaderboard()[0]["skill_id"] == "a"
    compute_leaderboards()
    assert [(r["skill_id"], r["score"]) for r in store.get_leaderboard()] == [("b", 4), ("a", 3)]
    assert store.get_leaderboard(hours=1, limit=1)[0]["skill_id"] == "b"  # a window: computed now
    with pytest.raises(ValueError, match="hours"):
        store.get_leaderboard(type="rating", hours=1)
    assert store.get_leaderboard(type="rating", org_id="nowhere") == []
